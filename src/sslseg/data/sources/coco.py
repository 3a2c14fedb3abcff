"""COCO instances JSON: a folder of images and one ``images`` / ``annotations`` / ``categories``
file, the format of Detectron2 and of most labelling tools.

Where the JSON is (``annotations``, a path relative to ``root``; default the Roboflow COCO
export's ``_annotations.coco.json``):

- ``root/<annotations>`` when that file exists (``root`` may also be the JSON file itself);
- else ``train/``, ``valid/`` (or ``val/``) and ``test/`` folders each holding their own
  ``<annotations>`` (the Roboflow COCO export): each item keeps its folder as its split, as
  ``seg-folder``'s Roboflow layout does, and a tile's augmented copies share a group.

An image's file is its ``file_name`` under ``images`` (a folder relative to ``root``, or to the
split folder; default the JSON's own folder level: ``root`` or the split folder), as
Detectron2's ``image_root``. Every image listed becomes an item, also one without annotations
(a negative); ``categories`` (a list of category names or ids) keeps only those categories'
annotations.

- ``read_mask``: the union of the image's instances (1), background (0); crowd regions
  (``iscrowd: 1``) not covered by an instance are ``IGNORE`` (255), excluded from loss and
  metrics, as Detectron2 drops crowd annotations in training and ``COCOeval`` counts them as
  ignore regions.
- ``read_instances``: an int32 label map, 0 background and ``1..N`` the image's non-crowd
  annotations in the JSON's order; where instances overlap the later one wins (an earlier
  instance that a later one covers entirely has no pixel left and is no instance).

Polygons, compressed and uncompressed RLE are decoded with ``pycocotools.mask`` (imported on
first use; ``data`` imports no other sub-package of sslseg).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from sslseg.data.sources.base import IGNORE, Item, Source, listed
from sslseg.data.sources.seg_folder import SPLIT_FOLDERS, tile_group
from sslseg.errors import SslsegError

ANNOTATIONS = "_annotations.coco.json"  # the Roboflow COCO export's name, in each split folder


@dataclass(frozen=True)
class _Record:
    """One image of a JSON: its size there and its kept annotations' segmentations."""

    json: Path
    file_name: str
    height: int
    width: int
    instances: tuple[tuple[int, Any], ...]  # (annotation id, segmentation), JSON order
    crowd: tuple[tuple[int, Any], ...]


def parse_categories(categories: Any) -> list[str | int] | None:
    """``None`` (all), or the list of names / ids (``"a,b"`` and one value accepted)."""
    if categories is None or categories == "" or categories == []:
        return None
    if isinstance(categories, str):
        values: list[Any] = [v.strip() for v in categories.split(",") if v.strip()]
    elif isinstance(categories, int):
        values = [categories]
    else:
        values = list(categories)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, str | int):
            raise SslsegError(
                f"config: source_options.categories: '{v}' is not a category name or id"
            )
    return values


def _matches(entry: str | int, category: dict[str, Any]) -> bool:
    if isinstance(entry, int):
        return category["id"] == entry
    return category.get("name") == entry or (entry.isdigit() and category["id"] == int(entry))


def _key(v: Any) -> bool:
    """An id COCO files use: an integer (or a string), never a bool."""
    return isinstance(v, int | str) and not isinstance(v, bool)


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def segmentation_problem(segm: Any, height: int, width: int) -> str:
    """Why ``segm`` is no mask of an ``height`` x ``width`` image ("" where it is one)."""
    if isinstance(segm, dict):
        size, counts = segm.get("size"), segm.get("counts")
        if not isinstance(size, list | tuple) or list(size) != [height, width]:
            return f"RLE size {size} is not the image's [height, width] [{height}, {width}]"
        if isinstance(counts, list):
            if not all(isinstance(c, int) and c >= 0 for c in counts):
                return "RLE counts are not non-negative integers"
            if sum(counts) != height * width:
                return f"RLE counts cover {sum(counts)} px, not {height}x{width}"
            return ""
        if isinstance(counts, str | bytes):
            return ""
        return "RLE has no 'counts' list or string"
    if isinstance(segm, list):
        if not segm:
            return "segmentation is empty (a box-only export has no masks)"
        for poly in segm:
            if not isinstance(poly, list) or not all(_number(v) for v in poly):
                return "a polygon is not a list of numbers"
            if len(poly) < 6 or len(poly) % 2:
                return f"a polygon has {len(poly)} coordinates (an even number, at least 6)"
        return ""
    return f"segmentation is a {type(segm).__name__}, not polygons or RLE"


def _compressed_counts(counts: bytes) -> list[int]:
    """The run lengths of COCO's compressed RLE string (pycocotools' ``rleFrString``)."""
    out: list[int] = []
    p = 0
    while p < len(counts):
        x, k, more = 0, 0, True
        while more:
            if p >= len(counts):
                raise ValueError("truncated")
            c = counts[p] - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(out) > 2:
            x += out[-2]
        out.append(x)
    return out


def decode_segmentation(segm: Any, height: int, width: int) -> np.ndarray:
    """A checked segmentation (polygons, RLE) as a bool ``height`` x ``width`` mask."""
    from pycocotools import mask as mask_utils

    if isinstance(segm, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segm, height, width))
    elif isinstance(segm["counts"], list):
        rle = mask_utils.frPyObjects(segm, height, width)
    else:
        counts = segm["counts"]
        counts = counts.encode("ascii") if isinstance(counts, str) else counts
        # pycocotools writes a compressed RLE's runs without a bounds check: check them here
        try:
            runs = _compressed_counts(counts)
        except (ValueError, IndexError):
            runs = [-1]
        if min(runs, default=0) < 0 or sum(runs) != height * width:
            raise ValueError(f"compressed RLE does not cover {height}x{width} px")
        rle = {"size": [height, width], "counts": counts}
    return mask_utils.decode(rle).astype(bool)


class Coco(Source):
    name = "coco"
    has_masks = True

    def __init__(
        self,
        root: str | Path,
        annotations: str = ANNOTATIONS,
        images: str = "",
        categories: Any = None,
    ) -> None:
        super().__init__(root)
        self.annotations = str(annotations or ANNOTATIONS)
        self.images = str(images or "")
        self.categories = parse_categories(categories)
        self._files = self._locate()
        self._items: list[Item] | None = None
        self._records: dict[str, _Record] = {}

    def options(self) -> dict[str, object]:
        return {
            "annotations": self.annotations,
            "images": self.images,
            "categories": self.categories,
        }

    def _locate(self) -> list[tuple[str, Path, Path]]:
        """``(split, json, image folder)`` of each JSON file, in split folder order."""
        if self.root.is_file():
            return [("", self.root, self.root.parent / self.images)]
        path = self.root / self.annotations
        if path.is_file():
            return [("", path, self.root / self.images)]
        folders = [d for d in sorted(self.root.iterdir()) if d.is_dir() and d.name in SPLIT_FOLDERS]
        found = [(SPLIT_FOLDERS[d.name], d / self.annotations, d / self.images) for d in folders]
        lacking = [f[1] for f in found if not f[1].is_file()]
        if not found or len(lacking) == len(found):
            where = f" (nor in {', '.join(d.name + '/' for d in folders)})" if folders else ""
            raise SslsegError(
                f"{path}: COCO annotations file not found{where}; set source_options.annotations"
            )
        if lacking:
            raise SslsegError(
                f"{lacking[0]}: COCO annotations file not found (the other split folders of "
                f"{self.root} hold one)"
            )
        return found

    def items(self) -> list[Item]:
        if self._items is None:
            items: list[Item] = []
            kept = [self._read(json_path) for _, json_path, _ in self._files]
            self._check_categories(kept)
            for (split, json_path, folder), data in zip(self._files, kept):
                items += self._items_of(split, json_path, folder, data)
            if not items:
                raise SslsegError(f"{self._files[0][1]}: no images listed")
            self._items = items
        return self._items

    def _read(self, path: Path) -> dict[str, Any]:
        """The JSON, checked to be a COCO instances file (one line naming it otherwise)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SslsegError(f"{path}: COCO annotations file not found") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
            raise SslsegError(f"{path}: not a readable JSON file ({reason})") from None
        if not isinstance(data, dict):
            raise SslsegError(f"{path}: not a COCO instances file (not a JSON object)")
        for key in ("images", "annotations", "categories"):
            if not isinstance(data.get(key), list):
                raise SslsegError(f"{path}: not a COCO instances file (no '{key}' list)")
        needs = {
            "images": ("id", "file_name", "width", "height"),
            "annotations": ("id", "image_id", "category_id", "segmentation"),
            "categories": ("id",),
        }
        for key, fields in needs.items():
            for i, entry in enumerate(data[key]):
                missing = [f for f in fields if not isinstance(entry, dict) or f not in entry]
                if missing:
                    raise SslsegError(
                        f"{path}: not a COCO instances file ({key}[{i}] has no '{missing[0]}')"
                    )
        for i, entry in enumerate(data["annotations"]):
            if not all(_key(entry[k]) for k in ("id", "image_id", "category_id")):
                raise SslsegError(
                    f"{path}: not a COCO instances file (annotations[{i}]: id, image_id and "
                    "category_id are not integers or strings)"
                )
        for entry in data["images"]:
            if not _key(entry["id"]) or not isinstance(entry["file_name"], str):
                raise SslsegError(
                    f"{path}: not a COCO instances file (image {entry['id']!r}: id or file_name "
                    "of the wrong type)"
                )
            if not all(isinstance(entry[k], int) and entry[k] > 0 for k in ("width", "height")):
                raise SslsegError(
                    f"{path}: not a COCO instances file (image {entry['id']}: width / height "
                    "are not positive integers)"
                )
        for key in ("id", "file_name"):
            seen: set[Any] = set()
            for entry in data["images"]:
                if entry[key] in seen:
                    raise SslsegError(
                        f"{path}: not a COCO instances file (image {key} {entry[key]!r} twice)"
                    )
                seen.add(entry[key])
        return data

    def _check_categories(self, kept: list[dict[str, Any]]) -> None:
        if self.categories is None:
            return
        cats = [c for data in kept for c in data["categories"]]
        for entry in self.categories:
            if not any(_matches(entry, c) for c in cats):
                names = ", ".join(sorted({f"{c.get('name', '?')} ({c['id']})" for c in cats}))
                raise SslsegError(
                    f"config: source_options.categories: '{entry}' is not a category of "
                    f"{self._files[0][1]} (choose from {names or 'none'})"
                )

    def _items_of(self, split: str, path: Path, folder: Path, data: dict) -> list[Item]:
        images = {entry["id"]: entry for entry in data["images"]}
        category_ids = {c["id"] for c in data["categories"]}
        keep = (
            category_ids
            if self.categories is None
            else {
                c["id"] for c in data["categories"] if any(_matches(e, c) for e in self.categories)
            }
        )
        by_image: dict[Any, tuple[list, list]] = {i: ([], []) for i in images}
        bad: list[str] = []
        for ann in data["annotations"]:
            where = f"annotation {ann['id']}"
            if ann["image_id"] not in images:
                bad.append(f"{where}: image id {ann['image_id']} is not in 'images'")
                continue
            if ann["category_id"] not in category_ids:
                bad.append(f"{where}: category id {ann['category_id']} is not in 'categories'")
                continue
            info = images[ann["image_id"]]
            problem = segmentation_problem(ann["segmentation"], info["height"], info["width"])
            if problem:
                bad.append(f"{where} ('{info['file_name']}'): {problem}")
                continue
            if ann["category_id"] in keep:
                crowd = bool(ann.get("iscrowd", 0))
                by_image[ann["image_id"]][int(crowd)].append((ann["id"], ann["segmentation"]))
        if bad:
            raise SslsegError(f"{path}: {len(bad)} bad annotation(s): {listed(bad, '; ')}")
        missing = [
            entry["file_name"]
            for entry in data["images"]
            if not (folder / entry["file_name"]).is_file()
        ]
        if missing:
            raise SslsegError(
                f"{path}: {len(missing)} image(s) listed but not found in {folder}: "
                f"{listed(missing, ', ')}"
            )
        prefix = f"{path.parent.name}/" if split else ""
        items = []
        for entry in data["images"]:
            stem = str(PurePosixPath(entry["file_name"]).with_suffix(""))
            item = Item(
                prefix + stem,
                folder / entry["file_name"],
                path,
                split=split,
                group=tile_group(PurePosixPath(stem).name),
            )
            instances, crowd = by_image[entry["id"]]
            self._records[item.id] = _Record(
                path,
                entry["file_name"],
                entry["height"],
                entry["width"],
                tuple(instances),
                tuple(crowd),
            )
            items.append(item)
        return items

    def _record(self, item: Item) -> _Record:
        self.items()
        record = self._records[item.id]
        try:
            with Image.open(item.image) as img:
                width, height = img.size
        except FileNotFoundError:
            raise SslsegError(f"{item.image}: image file not found") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise SslsegError(
                f"{item.image}: not a readable image ({exc.__class__.__name__})"
            ) from None
        if (width, height) != (record.width, record.height):
            raise SslsegError(
                f"{record.json}: '{record.file_name}' is {width}x{height} on disk but "
                f"{record.width}x{record.height} in the JSON"
            )
        return record

    def _decode(self, record: _Record, ann_id: int, segm: Any) -> np.ndarray:
        try:
            return decode_segmentation(segm, record.height, record.width)
        except ValueError as exc:
            raise SslsegError(
                f"{record.json}: annotation {ann_id} ('{record.file_name}'): {exc}"
            ) from None

    def read_mask(self, item: Item) -> np.ndarray:
        """The union of the instances (1); crowd regions outside them ``IGNORE``."""
        record = self._record(item)
        mask = np.zeros((record.height, record.width), np.uint8)
        for ann_id, segm in record.crowd:
            mask[self._decode(record, ann_id, segm)] = IGNORE
        for ann_id, segm in record.instances:
            mask[self._decode(record, ann_id, segm)] = 1
        return mask

    def read_instances(self, item: Item) -> np.ndarray:
        """int32 ids: 0 background, ``k`` the ``k``-th non-crowd annotation (later wins)."""
        record = self._record(item)
        ids = np.zeros((record.height, record.width), np.int32)
        for k, (ann_id, segm) in enumerate(record.instances, start=1):
            ids[self._decode(record, ann_id, segm)] = k
        return ids
