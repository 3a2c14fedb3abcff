"""A user's own segmentation data, in the layouts people download.

``layout``:

- ``folders``: ``images/`` and ``masks/`` (names settable) matched by file stem — also 16-bit
  instance label maps (``masks=instances``, DSB 2018), whose non-zero ids are foreground;
- ``suffix``: each image beside its mask ``<stem><mask_suffix>.<ext>`` in one folder — the
  Roboflow semantic-segmentation export (``<stem>.jpg`` + ``<stem>_mask.png``). Where the root
  holds ``train/``, ``valid/`` (or ``val/``) and ``test/`` folders, each item keeps its folder as
  its split, and the fine-tuning split follows it instead of a random one;
- ``auto`` (default): ``folders`` when ``images/`` exists, else ``suffix``.

``foreground``: ``auto`` (masks must be binary: 0/1 or 0/255), ``nonzero`` (any non-zero value,
e.g. MultiRes-PV's category codes 211/213, or instance ids), or a list of values (``[211]``).
``foreground_value`` (one value) is kept as an alias. ``include`` keeps only the images whose
stem matches a glob (e.g. ``PV01_*`` of a mixed export). Roboflow names augmented copies
``<tile>_jpg.rf.<hash>``: their ``group`` is the tile, so subsets keep a tile's copies together.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

import numpy as np

from sslseg.data.sources.base import Item, Source, list_images, read_label_image
from sslseg.errors import SslsegError

LAYOUTS = ("auto", "folders", "suffix")
#: split folder names as exported (Roboflow: train/valid/test) -> sslseg's split names
SPLIT_FOLDERS = {"train": "train", "valid": "val", "val": "val", "test": "test"}
ROBOFLOW_COPY = "_jpg.rf."  # Roboflow's marker between a tile's stem and its copy's hash


def parse_foreground(foreground: str | int | list[int], foreground_value: int) -> list[int] | str:
    """``"auto"``, ``"nonzero"`` or the sorted list of foreground values."""
    if foreground_value >= 0:
        return [int(foreground_value)]
    if isinstance(foreground, str) and foreground in ("auto", "nonzero"):
        return foreground
    values = foreground if isinstance(foreground, list | tuple) else str(foreground).split(",")
    try:
        out = sorted({int(v) for v in values})
    except (TypeError, ValueError):
        raise SslsegError(
            f"config: source_options.foreground: '{foreground}' is not auto, nonzero or a list "
            "of mask values"
        ) from None
    if not out:
        raise SslsegError("config: source_options.foreground: the list of values is empty")
    return out


def tile_group(stem: str) -> str:
    """The original a Roboflow copy was made from (``PV01_1_2_jpg.rf.ab12`` -> ``PV01_1_2``)."""
    return stem.split(ROBOFLOW_COPY)[0]


class SegFolder(Source):
    name = "seg-folder"
    has_masks = True

    def __init__(
        self,
        root: str | Path,
        images: str = "images",
        masks: str = "masks",
        foreground: str | int | list[int] = "auto",
        foreground_value: int = -1,
        layout: str = "auto",
        mask_suffix: str = "_mask",
        include: str = "*",
    ) -> None:
        super().__init__(root)
        if layout not in LAYOUTS:
            raise SslsegError(
                f"config: source_options.layout: '{layout}' is not one of {', '.join(LAYOUTS)}"
            )
        if layout == "auto":
            layout = "folders" if (self.root / images).is_dir() else "suffix"
        self.layout = layout
        self.image_dir = self.root / images
        self.mask_dir = self.root / masks
        self.foreground = parse_foreground(foreground, foreground_value)
        self.mask_suffix = mask_suffix
        self.include = include
        if layout == "folders":
            for folder in (self.image_dir, self.mask_dir):
                if not folder.is_dir():
                    raise SslsegError(f"{folder}: folder not found")
        self._items: list[Item] | None = None

    def options(self) -> dict[str, object]:
        return {
            "foreground": self.foreground,
            "layout": self.layout,
            "mask_suffix": self.mask_suffix,
            "include": self.include,
        }

    def _kept(self, path: Path) -> bool:
        return fnmatch.fnmatchcase(path.stem, self.include)

    def items(self) -> list[Item]:
        if self._items is None:
            items = self._folder_items() if self.layout == "folders" else self._suffix_items()
            if not items:
                raise SslsegError(f"{self.root}: no images found (include '{self.include}')")
            self._items = items
        return self._items

    def _folder_items(self) -> list[Item]:
        masks = {p.stem: p for p in list_images(self.mask_dir)}
        images = [p for p in list_images(self.image_dir) if self._kept(p)]
        missing = [p for p in images if p.stem not in masks]
        if missing:
            raise SslsegError(no_mask_message(missing, self.mask_dir))
        return [Item(p.stem, p, masks[p.stem]) for p in images]

    def _suffix_items(self) -> list[Item]:
        splits = [d for d in sorted(self.root.iterdir()) if d.is_dir() and d.name in SPLIT_FOLDERS]
        folders = splits or [self.root]
        items: list[Item] = []
        for folder in folders:
            split = SPLIT_FOLDERS[folder.name] if splits else ""
            files = list_images(folder)
            masks = {p.stem: p for p in files if p.stem.endswith(self.mask_suffix)}
            images = [p for p in files if not p.stem.endswith(self.mask_suffix) and self._kept(p)]
            missing = [p for p in images if f"{p.stem}{self.mask_suffix}" not in masks]
            if missing:
                raise SslsegError(no_mask_message(missing, folder, self.mask_suffix))
            prefix = f"{folder.name}/" if splits else ""
            for p in images:
                mask = masks[f"{p.stem}{self.mask_suffix}"]
                items.append(Item(prefix + p.stem, p, mask, split=split, group=tile_group(p.stem)))
        return items

    def read_mask(self, item: Item) -> np.ndarray:
        raw = read_label_image(item.mask)
        if self.foreground == "nonzero":
            return (raw != 0).astype(np.uint8)
        if isinstance(self.foreground, list):
            return np.isin(raw, self.foreground).astype(np.uint8)
        values = set(np.unique(raw).tolist())
        if values <= {0, 1}:
            return raw.astype(np.uint8)
        if values <= {0, 255}:
            return (raw == 255).astype(np.uint8)
        raise SslsegError(
            f"{item.mask}: mask is not binary (values {sorted(values)[:6]}); set "
            "source_options.foreground: nonzero, or the list of foreground values"
        )

    def read_instances(self, item: Item) -> np.ndarray:
        """The mask file as stored: instance ids (0 = background) or category codes."""
        return read_label_image(item.mask)


def no_mask_message(missing: list[Path], folder: Path, suffix: str = "") -> str:
    """One line naming every image without a mask (the first 10, then a count)."""
    shown = ", ".join(p.name for p in missing[:10])
    more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
    what = f"a '{suffix}' mask beside it" if suffix else f"a mask of the same name in {folder}"
    return f"{folder}: {len(missing)} image(s) without {what}: {shown}{more}"
