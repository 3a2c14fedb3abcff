"""``sslseg saliency [CONFIG.yaml] [key=value ...]``: HC/RC maps, SaliencyCut masks and region
images for a folder of images, or (``cache=true``) the hashed saliency cache of a store.

    sslseg saliency images=IMAGES_DIR out=OUT_DIR [scale=1|2] [workers=N]
    sslseg saliency cache=true source=NAME root=DIR side=S [scale=1|2]

The folder mode writes ``OUT_DIR/maps/<stem>.png`` (RC map, 0-255), ``OUT_DIR/hc/<stem>.png``
(HC map), ``OUT_DIR/masks/<stem>.png`` (SaliencyCut mask, 0/255) and
``OUT_DIR/regions/<stem>.png`` (the segmentation image: RC regions split along the mask, each
painted with its mean colour). ``scale=2`` processes a x2 bicubic upscale, the study's "200p".
The older forms ``sslseg saliency IMAGES_DIR OUT_DIR`` and the ``--cache --source ...`` flags
are kept as aliases.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from sslseg.config import Alias, add_config_arguments, config_from_args, require
from sslseg.errors import SslsegError
from sslseg.saliency.cache.format import SOURCE_SIDE


@dataclass
class SaliencyConfig:
    """Every key of ``sslseg saliency``."""

    images: str = ""  # folder mode: the folder of images (jpg, png, ...; not recursive)
    out: str = ""  # folder mode: output folder (maps/, hc/, masks/, regions/ are created)
    cache: bool = False  # true: fill the hashed cache of the store source/root/side instead
    source: str = ""  # cache mode: data source name (as in sslseg pretrain)
    root: str = ""  # cache mode: the source's folder
    side: int = 64  # cache mode: store side in pixels
    resize: str = "squash"  # cache mode: store resize rule (squash | center-crop)
    source_side: int = SOURCE_SIDE  # cache mode: saliency runs at this longer side, then resized
    cache_root: str = ""  # cache mode: folder of caches ("" = $SSLSEG_CACHE/saliency)
    scale: int = 1  # 1: original / store size (100p); 2: x2 bicubic upscale (200p)
    workers: int = 0  # processes in parallel (0 = all cores)
    progress: bool = True  # progress bar

    def __post_init__(self) -> None:
        require(self.scale in (1, 2), "scale", f"must be 1 or 2, got {self.scale}")
        require(self.workers >= 0, "workers", f"must be >= 0 (0 = all cores), got {self.workers}")
        require(self.side >= 8, "side", f"must be at least 8, got {self.side}")
        require(self.source_side >= 8, "source_side", f"must be at least 8, got {self.source_side}")


ALIASES = (
    Alias("--cache", "cache", "fill the hashed saliency cache of a store", const=True),
    Alias("--source", "source", "cache mode: data source name"),
    Alias("--root", "root", "cache mode: folder of the source"),
    Alias("--side", "side", "cache mode: store side"),
    Alias("--resize", "resize", "cache mode: store resize rule"),
    Alias("--source-side", "source_side", "cache mode: longer side saliency runs at"),
    Alias("--cache-root", "cache_root", "cache mode: folder of caches"),
    Alias("--scale", "scale", "1 (100p) or 2 (200p)"),
    Alias("--workers", "workers", "processes in parallel"),
)

NOTES = """\
examples:
  sslseg saliency images=photos out=runs/saliency scale=2
  sslseg saliency cache=true source=cats-vs-dogs root=../shared/data/cats-vs-dogs side=64
  (older form, kept: sslseg saliency IMAGES_DIR OUT_DIR --scale 2)"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``sslseg saliency``."""
    add_config_arguments(parser, SaliencyConfig, ALIASES, NOTES)


def folders_as_keys(items: list[str]) -> list[str]:
    """The older positional form ``IMAGES_DIR OUT_DIR`` as ``images=`` / ``out=`` keys."""
    folders = [i for i in items if "=" not in i and not i.endswith((".yaml", ".yml"))]
    if len(folders) > 2:
        raise SslsegError(f"{folders[2]}: at most two folders (images, out) may be given")
    rest = [i for i in items if i not in folders]
    return rest + [f"{key}={value}" for key, value in zip(("images", "out"), folders)]


def run(args: argparse.Namespace) -> int:
    """The config from the command line, then :func:`saliency`."""
    args.config_args = folders_as_keys(list(args.config_args or []))
    saliency(config_from_args(args))
    return 0


def saliency(config: SaliencyConfig) -> int:
    """Process the folder (or fill the cache) of ``config``; returns the images processed."""
    if config.cache:
        from sslseg.saliency.cache.command import fill_store_cache

        return fill_store_cache(config)
    from sslseg.saliency.batch import process_folder

    if not config.images or not config.out:
        raise SslsegError("config: images, out: both folders are needed (or cache=true)")
    n = process_folder(
        config.images,
        config.out,
        scale=config.scale,
        workers=config.workers or os.cpu_count() or 1,
        progress=config.progress,
    )
    print(f"saliency: {n} images -> {config.out}")
    return n
