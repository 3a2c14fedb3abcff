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

``exclude_groups`` (a list of tile stems) and ``exclude_like`` (a folder: the stems of its
images, or of its ``images/``) drop every item of those tiles, augmented copies included — to
pretrain without the images a study later scores on. A name or folder that drops nothing is
an error (a typo would otherwise exclude nothing silently).

``labels: mask-code`` gives each image a class label: the most frequent non-zero value of its
mask file as stored (ties: the smaller value), e.g. MultiRes-PV's roof category 211 or 213.
Class names are the codes as strings, in code order, unless ``code_names`` maps codes to names
(``{211: flat-concrete, 213: brick}``; codes given one name share a class). An all-zero mask
is class ``none`` (code 0, renamed by ``code_names``) with ``empty_masks: label`` (default),
or the image is left out with ``empty_masks: drop``. Every mask is read once when the items
are listed.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from pathlib import Path
from typing import Any

import numpy as np

from sslseg.data.sources.base import Item, Source, list_images, listed, read_label_image
from sslseg.errors import SslsegError

LAYOUTS = ("auto", "folders", "suffix")
#: split folder names as exported (Roboflow: train/valid/test) -> sslseg's split names
SPLIT_FOLDERS = {"train": "train", "valid": "val", "val": "val", "test": "test"}
ROBOFLOW_COPY = "_jpg.rf."  # Roboflow's marker between a tile's stem and its copy's hash
LABEL_RULES = ("none", "mask-code")
EMPTY_RULES = ("label", "drop")
EMPTY_NAME = "none"  # class of an all-zero mask under labels: mask-code (code 0)


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


def parse_code_names(code_names: Any) -> dict[int, str]:
    """``{code: name}`` from a mapping whose keys are mask values (ints or their strings)."""
    if code_names is None:
        return {}
    if not isinstance(code_names, dict):
        raise SslsegError(
            f"config: source_options.code_names: '{code_names}' is not a mapping of mask codes "
            "to names, e.g. {211: flat-concrete, 213: brick}"
        )
    out: dict[int, str] = {}
    for key, name in code_names.items():
        try:
            code = int(str(key))
        except ValueError:
            raise SslsegError(
                f"config: source_options.code_names: key '{key}' is not a mask value (an integer)"
            ) from None
        if code < 0 or isinstance(name, dict | list) or str(name) in ("", "None"):
            raise SslsegError(
                f"config: source_options.code_names: {key}: '{name}' is not a mask value "
                "and a class name"
            )
        out[code] = str(name)
    return out


def parse_groups(groups: Any) -> set[str]:
    """Tile stems from a list or a comma-separated string (``exclude_groups``)."""
    if groups is None:
        return set()
    values = groups if isinstance(groups, list | tuple) else str(groups).split(",")
    out = {str(v).strip() for v in values}
    if "" in out or any(isinstance(v, dict | list) for v in values):
        raise SslsegError(
            f"config: source_options.exclude_groups: '{groups}' is not a list of tile stems"
        )
    return out


def groups_like(folder: str | Path, mask_suffix: str = "_mask") -> set[str]:
    """The tiles of a folder's images (``exclude_like``): its ``images/`` if it has one."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise SslsegError(f"config: source_options.exclude_like: {path}: folder not found")
    if (path / "images").is_dir():
        path = path / "images"
    stems = {tile_group(p.stem) for p in list_images(path) if not p.stem.endswith(mask_suffix)}
    if not stems:
        raise SslsegError(f"config: source_options.exclude_like: {path}: no images in it")
    return stems


def mask_code(raw: np.ndarray) -> int:
    """The most frequent non-zero value of a mask (ties: the smaller); 0 when all zero."""
    values, counts = np.unique(raw[raw != 0], return_counts=True)
    return int(values[np.argmax(counts)]) if values.size else 0


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
        labels: str = "none",
        code_names: dict[Any, str] | None = None,
        empty_masks: str = "label",
        exclude_groups: list[str] | str | None = None,
        exclude_like: str = "",
    ) -> None:
        super().__init__(root)
        if layout not in LAYOUTS:
            raise SslsegError(
                f"config: source_options.layout: '{layout}' is not one of {', '.join(LAYOUTS)}"
            )
        if labels not in LABEL_RULES:
            raise SslsegError(
                f"config: source_options.labels: '{labels}' is not one of {', '.join(LABEL_RULES)}"
            )
        if empty_masks not in EMPTY_RULES:
            raise SslsegError(
                f"config: source_options.empty_masks: '{empty_masks}' is not one of "
                f"{', '.join(EMPTY_RULES)}"
            )
        for key, given in (
            ("code_names", code_names is not None),
            ("empty_masks", empty_masks != "label"),
        ):
            if given and labels != "mask-code":
                raise SslsegError(f"config: source_options.{key}: needs labels: mask-code")
        self.labels = labels
        self.code_names = parse_code_names(code_names)
        self.empty_masks = empty_masks
        self.exclude_groups = parse_groups(exclude_groups)
        self.exclude_like = str(exclude_like)
        self._like = groups_like(exclude_like, mask_suffix) if exclude_like else set()
        self.excluded = self.exclude_groups | self._like
        self._dropped: set[str] = set()  # excluded tiles that matched an image
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
        options: dict[str, object] = {
            "foreground": self.foreground,
            "layout": self.layout,
            "mask_suffix": self.mask_suffix,
            "include": self.include,
        }
        # only when set, so the stores of folders read without them keep their key
        if self.labels != "none":
            options["labels"] = self.labels
            options["code_names"] = {str(k): v for k, v in sorted(self.code_names.items())}
            options["empty_masks"] = self.empty_masks
        if self.excluded:
            options["exclude_groups"] = sorted(self.excluded)
        return options

    def _kept(self, path: Path) -> bool:
        if not fnmatch.fnmatchcase(path.stem, self.include):
            return False
        group = tile_group(path.stem)
        if group in self.excluded:
            self._dropped.add(group)
            return False
        return True

    def items(self) -> list[Item]:
        if self._items is None:
            self._dropped = set()
            items = self._folder_items() if self.layout == "folders" else self._suffix_items()
            self._check_excluded()
            if self.labels == "mask-code":
                items = self._labelled(items)
            if not items:
                raise SslsegError(f"{self.root}: no images found (include '{self.include}')")
            self._items = items
        return self._items

    def code_name(self, code: int) -> str:
        """The class name of a mask code: ``code_names``, else the code (0: ``none``)."""
        return self.code_names.get(code, EMPTY_NAME if code == 0 else str(code))

    def _check_excluded(self) -> None:
        """A named tile, or a folder, that dropped nothing is an error (a likely typo)."""
        unmatched = sorted(self.exclude_groups - self._dropped)
        if unmatched:
            raise SslsegError(
                f"config: source_options.exclude_groups: {len(unmatched)} name(s) match no "
                f"image of {self.root} (include '{self.include}'): {listed(unmatched)}"
            )
        if self.exclude_like and not self._like & self._dropped:
            raise SslsegError(
                f"config: source_options.exclude_like: no image of {self.root} has the stem of "
                f"an image in {self.exclude_like}"
            )

    def _labelled(self, items: list[Item]) -> list[Item]:
        """``items`` with the class of their mask's code (``labels: mask-code``)."""
        codes, bad = [], []
        for it in items:
            try:
                codes.append(mask_code(self.read_instances(it)))
            except SslsegError as exc:
                bad.append(str(exc))
        if bad:  # every unreadable mask in one line
            more = f"; and {len(bad) - 10} more" if len(bad) > 10 else ""
            raise SslsegError(f"{len(bad)} mask(s) unreadable: " + "; ".join(bad[:10]) + more)
        if self.empty_masks == "drop":
            items = [it for it, code in zip(items, codes, strict=True) if code]
            codes = [code for code in codes if code]
            if not items:
                raise SslsegError(f"{self.root}: every mask is all zero (empty_masks: drop)")
        name_of = {code: self.code_name(code) for code in sorted(set(codes))}
        self.class_names = list(dict.fromkeys(name_of.values()))  # code order, one per name
        label_of = {code: self.class_names.index(name) for code, name in name_of.items()}
        return [
            dataclasses.replace(it, label=label_of[code])
            for it, code in zip(items, codes, strict=True)
        ]

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
    what = f"a '{suffix}' mask beside it" if suffix else f"a mask of the same name in {folder}"
    return f"{folder}: {len(missing)} image(s) without {what}: {listed([p.name for p in missing])}"
