"""A folder of images: unlabelled, or labelled by class sub-folders (``root/<class>/*.jpg``).

The masks of segmentation layouts are not images to pretrain on: files named ``*_mask.*``
(Roboflow) are skipped, a root with ``images/`` beside ``masks/`` / ``instances/`` /
``annotations/`` reads ``images/`` only, and split folders (``train/ valid/ test/``) are not
classes.
"""

from __future__ import annotations

from pathlib import Path

from sslseg.data.sources.base import Item, Source, list_images
from sslseg.data.sources.seg_folder import SPLIT_FOLDERS, tile_group
from sslseg.errors import SslsegError


class ImageFolder(Source):
    name = "image-folder"

    def __init__(self, root: str | Path) -> None:
        super().__init__(root)
        self._items: list[Item] | None = None

    def items(self) -> list[Item]:
        if self._items is None:
            self._items = folder_items(self.root, self)
        return self._items


MASK_FOLDERS = ("masks", "instances", "annotations", "labels", "trimaps")
MASK_SUFFIX = "_mask"


def unlabelled_images(folder: Path) -> list[Path]:
    """The images of ``folder`` that are not segmentation masks."""
    return [p for p in list_images(folder) if not p.stem.endswith(MASK_SUFFIX)]


def folder_items(root: Path, source: Source) -> list[Item]:
    """Items of ``root``: class sub-folders give labels, else plain unlabelled images."""
    subs = sorted(p.name for p in root.iterdir() if p.is_dir() and unlabelled_images(p))
    if "images" in subs and any((root / m).is_dir() for m in MASK_FOLDERS):
        return [Item(p.stem, p) for p in unlabelled_images(root / "images")] or _none(root)
    items: list[Item] = []
    if subs and set(subs) <= set(SPLIT_FOLDERS):
        for name in subs:
            split = SPLIT_FOLDERS[name]
            for p in unlabelled_images(root / name):
                items.append(Item(f"{name}/{p.stem}", p, split=split, group=tile_group(p.stem)))
    elif subs:
        source.class_names = subs
        for label, name in enumerate(subs):
            for path in unlabelled_images(root / name):
                items.append(Item(f"{name}/{path.stem}", path, None, label))
    else:
        items = [Item(p.stem, p) for p in unlabelled_images(root)]
    return items or _none(root)


def _none(root: Path) -> list[Item]:
    raise SslsegError(f"{root}: no images found")
