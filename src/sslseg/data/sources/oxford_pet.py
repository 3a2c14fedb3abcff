"""Oxford-IIIT Pet in the official layout (Parkhi et al., CVPR 2012).

``images/NAME.jpg``, ``annotations/trimaps/NAME.png`` (1 pet, 2 background, 3 border) and
``annotations/{trainval,test}.txt`` (``NAME CLASS_ID SPECIES BREED_ID``). Items are the union
of both split files; without them, every image in ``images/``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sslseg.data.sources.base import IGNORE, Item, Source, list_images, read_label_image
from sslseg.errors import SslsegError

BORDER_RULES = ("foreground", "background", "ignore")


class OxfordPet(Source):
    name = "oxford-pet"
    has_masks = True

    def __init__(self, root: str | Path, border: str = "foreground") -> None:
        super().__init__(root)
        if border not in BORDER_RULES:
            raise SslsegError(f"config: border: '{border}' is not one of {', '.join(BORDER_RULES)}")
        self.border = border
        if not (self.root / "images").is_dir():
            raise SslsegError(f"{self.root}: not an Oxford-IIIT Pet folder (no images/ inside)")
        self._items: list[Item] | None = None

    def options(self) -> dict[str, object]:
        return {"border": self.border}

    def items(self) -> list[Item]:
        if self._items is None:
            self._items = self._list()
        return self._items

    def _list(self) -> list[Item]:
        ann = self.root / "annotations"
        labels: dict[str, int] = {}
        breeds: dict[int, str] = {}
        for split in ("trainval.txt", "test.txt"):
            path = ann / split
            if path.is_file():
                for line in path.read_text().splitlines():
                    parts = line.split()
                    if len(parts) >= 2 and not line.startswith("#"):
                        labels[parts[0]] = int(parts[1]) - 1
                        breeds[int(parts[1]) - 1] = parts[0].rsplit("_", 1)[0]
        images = {p.stem: p for p in list_images(self.root / "images")}
        names = sorted(labels) if labels else sorted(images)
        if not names:
            raise SslsegError(f"{self.root / 'images'}: no images found")
        # class ids in the file are sparse in a subset; map them to 0..K-1
        present = sorted({labels[n] for n in names if n in labels})
        remap = {c: i for i, c in enumerate(present)}
        self.class_names = [breeds[c] for c in present]
        items = []
        for name in names:
            if name not in images:
                raise SslsegError(
                    f"{self.root / 'images' / (name + '.jpg')}: image listed in "
                    "annotations but missing"
                )
            trimap = ann / "trimaps" / f"{name}.png"
            if not trimap.is_file():
                raise SslsegError(f"{images[name]}: no trimap at {trimap}")
            items.append(Item(name, images[name], trimap, remap.get(labels.get(name, -2), -1)))
        return items

    def read_mask(self, item: Item) -> np.ndarray:
        trimap = read_label_image(item.mask)
        values = np.unique(trimap)
        bad = values[~np.isin(values, (1, 2, 3))]
        if bad.size:
            raise SslsegError(
                f"{item.mask}: trimap values must be 1, 2 or 3, found {bad[:5].tolist()}"
            )
        border = {"foreground": 1, "background": 0, "ignore": IGNORE}[self.border]
        lut = np.array([0, 1, 0, border], dtype=np.uint8)
        return lut[trimap]
