"""STL-10 from torchvision's ``stl10_binary`` files (Coates et al., AISTATS 2011).

``split`` is ``unlabeled`` (100k images, the pretraining set), ``train`` or ``test``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sslseg.data.sources.base import Item, Source
from sslseg.errors import SslsegError

FILES = {
    "unlabeled": ("unlabeled_X.bin", None),
    "train": ("train_X.bin", "train_y.bin"),
    "test": ("test_X.bin", "test_y.bin"),
}


class Stl10(Source):
    name = "stl10"

    def __init__(self, root: str | Path, split: str = "unlabeled") -> None:
        super().__init__(root)
        if split not in FILES:
            raise SslsegError(f"config: split: '{split}' is not one of {', '.join(FILES)}")
        self.split = split
        folder = self.root / "stl10_binary" if (self.root / "stl10_binary").is_dir() else self.root
        self.images_file = folder / FILES[split][0]
        if not self.images_file.is_file():
            raise SslsegError(f"{self.images_file}: STL-10 binary file not found")
        self.labels_file = folder / FILES[split][1] if FILES[split][1] else None
        names = folder / "class_names.txt"
        self.class_names = names.read_text().split() if names.is_file() else []
        self._data: np.ndarray | None = None
        self._items: list[Item] | None = None

    def options(self) -> dict[str, object]:
        return {"split": self.split}

    def items(self) -> list[Item]:
        if self._items is None:
            count = self.images_file.stat().st_size // (3 * 96 * 96)
            labels = (
                np.fromfile(self.labels_file, dtype=np.uint8).astype(int) - 1
                if self.labels_file
                else np.full(count, -1)
            )
            self._items = [
                Item(f"{self.split}/{i}", self.images_file, None, int(labels[i]))
                for i in range(count)
            ]
        return self._items

    def read_image(self, item: Item) -> np.ndarray:
        if self._data is None:
            raw = np.memmap(self.images_file, dtype=np.uint8, mode="r")
            # stored column-major per channel: (N, 3, 96, 96) with W and H swapped
            self._data = raw.reshape(-1, 3, 96, 96)
        return np.ascontiguousarray(self._data[int(item.id.rsplit("/", 1)[1])].transpose(2, 1, 0))
