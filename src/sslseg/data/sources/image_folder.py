"""A folder of images: unlabelled, or labelled by class sub-folders (``root/<class>/*.jpg``)."""

from __future__ import annotations

from pathlib import Path

from sslseg.data.sources.base import Item, Source, list_images
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


def folder_items(root: Path, source: Source) -> list[Item]:
    """Items of ``root``: class sub-folders give labels, else plain unlabelled images."""
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and list_images(p))
    items: list[Item] = []
    if classes:
        source.class_names = classes
        for label, name in enumerate(classes):
            for path in list_images(root / name):
                items.append(Item(f"{name}/{path.stem}", path, None, label))
    else:
        items = [Item(p.stem, p) for p in list_images(root)]
    if not items:
        raise SslsegError(f"{root}: no images found")
    return items
