"""Kaggle Dogs vs. Cats: ``cat.N.jpg`` / ``dog.N.jpg`` (label from the file name)."""

from __future__ import annotations

from pathlib import Path

from sslseg.data.sources.base import Item, Source, list_images
from sslseg.errors import SslsegError


class CatsVsDogs(Source):
    name = "cats-vs-dogs"

    def __init__(self, root: str | Path) -> None:
        super().__init__(root)
        self.class_names = ["cat", "dog"]
        self._items: list[Item] | None = None

    def items(self) -> list[Item]:
        if self._items is None:
            folder = self.root / "train" if (self.root / "train").is_dir() else self.root
            items = []
            for path in list_images(folder):
                kind = path.name.split(".")[0].lower()
                if kind in self.class_names:
                    items.append(Item(path.stem, path, None, self.class_names.index(kind)))
            if not items:
                raise SslsegError(f"{folder}: no cat.N.jpg / dog.N.jpg images found")
            self._items = sorted(items, key=lambda i: (i.label, _number(i.id)))
        return self._items


def _number(item_id: str) -> int:
    tail = item_id.split(".")[-1]
    return int(tail) if tail.isdigit() else -1
