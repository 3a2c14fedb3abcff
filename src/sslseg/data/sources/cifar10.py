"""CIFAR-10: torchvision's ``cifar-10-batches-py`` files when present, else class folders.

The class-folder layout is ``<root>/{train,test}/<class>/*.png`` (``split`` picks one, or
``all``); the pickled layout is read straight from its batch files.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from sslseg.data.sources.base import Item, Source
from sslseg.data.sources.image_folder import folder_items
from sslseg.errors import SslsegError

SPLITS = ("train", "test", "all")


class Cifar10(Source):
    name = "cifar10"

    def __init__(self, root: str | Path, split: str = "train") -> None:
        super().__init__(root)
        if split not in SPLITS:
            raise SslsegError(f"config: split: '{split}' is not one of {', '.join(SPLITS)}")
        self.split = split
        self._items: list[Item] | None = None
        self._arrays: dict[Path, np.ndarray] = {}
        batches = self.root / "cifar-10-batches-py"
        self.pickled = batches if batches.is_dir() else None

    def options(self) -> dict[str, object]:
        return {"split": self.split}

    def items(self) -> list[Item]:
        if self._items is None:
            self._items = self._pickled_items() if self.pickled else self._folder_items()
        return self._items

    def _folder_items(self) -> list[Item]:
        splits = ("train", "test") if self.split == "all" else (self.split,)
        items: list[Item] = []
        for split in splits:
            folder = self.root / split
            if not folder.is_dir():
                raise SslsegError(f"{folder}: CIFAR-10 split folder not found")
            for item in folder_items(folder, self):
                items.append(Item(f"{split}/{item.id}", item.image, None, item.label))
        return items

    def _pickled_items(self) -> list[Item]:
        names = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
        files = names["train"] + names["test"] if self.split == "all" else names[self.split]
        meta = pickle.loads((self.pickled / "batches.meta").read_bytes())
        self.class_names = list(meta["label_names"])
        items = []
        for name in files:
            path = self.pickled / name
            batch = pickle.loads(path.read_bytes(), encoding="bytes")
            self._arrays[path] = batch[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
            items += [
                Item(f"{name}/{i}", path, None, int(y)) for i, y in enumerate(batch[b"labels"])
            ]
        return items

    def read_image(self, item: Item) -> np.ndarray:
        if self.pickled is None:
            return super().read_image(item)
        if not self._arrays:
            self.items()
        return self._arrays[item.image][int(item.id.rsplit("/", 1)[1])]
