"""A user's own segmentation data: ``images/`` and ``masks/`` matched by file stem.

Masks are binary (0/255 or 0/1) unless ``foreground_value`` names the foreground value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sslseg.data.sources.base import Item, Source, list_images, read_label_image
from sslseg.errors import SslsegError


class SegFolder(Source):
    name = "seg-folder"
    has_masks = True

    def __init__(
        self,
        root: str | Path,
        images: str = "images",
        masks: str = "masks",
        foreground_value: int = -1,
    ) -> None:
        super().__init__(root)
        self.image_dir = self.root / images
        self.mask_dir = self.root / masks
        self.foreground_value = foreground_value
        for folder in (self.image_dir, self.mask_dir):
            if not folder.is_dir():
                raise SslsegError(f"{folder}: folder not found")
        self._items: list[Item] | None = None

    def options(self) -> dict[str, object]:
        return {"foreground_value": self.foreground_value}

    def items(self) -> list[Item]:
        if self._items is None:
            masks = {p.stem: p for p in list_images(self.mask_dir)}
            images = list_images(self.image_dir)
            if not images:
                raise SslsegError(f"{self.image_dir}: no images found")
            items = []
            for image in images:
                if image.stem not in masks:
                    raise SslsegError(f"{image}: no mask with the same name in {self.mask_dir}")
                items.append(Item(image.stem, image, masks[image.stem]))
            self._items = items
        return self._items

    def read_mask(self, item: Item) -> np.ndarray:
        raw = read_label_image(item.mask)
        if self.foreground_value >= 0:
            return (raw == self.foreground_value).astype(np.uint8)
        values = set(np.unique(raw).tolist())
        if values <= {0, 1}:
            return raw.astype(np.uint8)
        if values <= {0, 255}:
            return (raw == 255).astype(np.uint8)
        raise SslsegError(
            f"{item.mask}: mask is not binary (values {sorted(values)[:6]}); set foreground_value"
        )
