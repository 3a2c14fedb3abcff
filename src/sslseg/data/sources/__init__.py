"""Data sources by name. Adding a layout is one file here and one line in ``SOURCES``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sslseg.data.sources.base import IGNORE, Item, Source, read_rgb
from sslseg.data.sources.cats_vs_dogs import CatsVsDogs
from sslseg.data.sources.cifar10 import Cifar10
from sslseg.data.sources.coco import Coco
from sslseg.data.sources.image_folder import ImageFolder
from sslseg.data.sources.oxford_pet import OxfordPet
from sslseg.data.sources.seg_folder import SegFolder
from sslseg.data.sources.stl10 import Stl10
from sslseg.errors import SslsegError

SOURCES: dict[str, type[Source]] = {
    cls.name: cls for cls in (OxfordPet, SegFolder, Coco, ImageFolder, CatsVsDogs, Cifar10, Stl10)
}

SAMPLE_ROOT = Path(__file__).resolve().parent.parent / "sample" / "oxford-iiit-pet"


def make_source(name: str, root: str | Path | None = None, **options: Any) -> Source:
    """The source ``name`` over ``root``; ``name="sample"`` is the embedded Pet sample."""
    if name == "sample":
        return OxfordPet(SAMPLE_ROOT, **options)
    if name not in SOURCES:
        raise SslsegError(
            f"config: source: unknown source '{name}' (choose from sample, {', '.join(SOURCES)})"
        )
    if root is None or str(root) == "":
        raise SslsegError(f"config: root: source '{name}' needs a data folder")
    try:
        return SOURCES[name](root, **options)
    except TypeError as exc:
        raise SslsegError(f"config: source_options: {exc}") from None


__all__ = ["IGNORE", "SOURCES", "Item", "Source", "make_source", "read_rgb"]
