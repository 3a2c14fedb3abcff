"""Pseudo-labels: any image store paired with its cached SaliencyCut masks, as a seg-folder.

Why here and not a source in ``data/sources``: the masks come from the saliency cache, and
``data`` imports no other sub-package (docs/architecture.md), so a ``SOURCES`` entry could not
reach the cache. ``saliency`` may import ``data`` (the cache is keyed by the store's content
hash) and needs no torch for this, so the adapter lives here. What it produces is a folder in
the ``seg-folder`` suffix layout (``<name>.png`` beside ``<name>_mask.png``, optionally one
folder per split), which ``sslseg finetune source=seg-folder root=FOLDER`` (and any command
that reads a segmentation source) reads like a user's own data, with no change to fine-tuning.

Images are written as lossless PNG copies of the store images, so the store of the written
folder has the same content hash per image as the store it came from: the cache's entry for an
image is found again from the written copy. Masks are written 0 / 255.

The confidence rule (:class:`ConfidenceRule`) drops images whose mask is unlikely to be right:
its area fraction outside ``[min_area, max_area]`` (an empty cut, or one that took the whole
frame) or an RC saliency contrast (mean saliency inside the mask minus outside, in [-1, 1])
below ``min_contrast`` (the object is not clearly more salient than its surroundings).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sslseg.atomic import building
from sslseg.config import require
from sslseg.data.store import Store
from sslseg.errors import SslsegError
from sslseg.saliency.cache.filling import fill_store

IGNORE = 255
MASK_SUFFIX = "_mask"
#: the split folders this module writes, by sslseg's split name (the seg-folder layout's names)
FOLDER_OF = {"train": "train", "val": "valid", "test": "test"}
MANIFEST = "pseudo.json"
#: the seg-folder options that read a folder written here
SEG_FOLDER_OPTIONS: dict[str, Any] = {"layout": "suffix", "foreground": "auto"}


@dataclass
class ConfidenceRule:
    """Which pseudo-masks to keep (the defaults keep every mask)."""

    min_area: float = 0.0  # smallest mask area, as a fraction of the image
    max_area: float = 1.0  # largest mask area, as a fraction of the image
    min_contrast: float = -1.0  # RC saliency inside the mask minus outside, in [-1, 1]

    def __post_init__(self) -> None:
        require(0 <= self.min_area <= 1, "confidence.min_area", f"{self.min_area} not in [0, 1]")
        require(0 <= self.max_area <= 1, "confidence.max_area", f"{self.max_area} not in [0, 1]")
        require(
            self.min_area <= self.max_area,
            "confidence.min_area",
            f"{self.min_area} is above max_area {self.max_area}",
        )
        require(
            -1 <= self.min_contrast <= 1,
            "confidence.min_contrast",
            f"{self.min_contrast} not in [-1, 1]",
        )

    def reason(self, area: float, contrast: float) -> str:
        """Why a mask with this area and contrast is dropped; "" when it is kept."""
        if area < self.min_area:
            return f"area {area:.3f} < {self.min_area:g}"
        if area > self.max_area:
            return f"area {area:.3f} > {self.max_area:g}"
        if contrast < self.min_contrast:
            return f"contrast {contrast:.3f} < {self.min_contrast:g}"
        return ""

    def keeps(self, area: float, contrast: float) -> bool:
        return not self.reason(area, contrast)


def mask_area(mask: np.ndarray) -> float:
    """Foreground share of a 0/1 mask."""
    return float(np.count_nonzero(mask)) / max(mask.size, 1)


def saliency_contrast(mask: np.ndarray, saliency: np.ndarray) -> float:
    """Mean saliency (uint8 0..255 map, scaled to 0..1) inside ``mask`` minus outside it.

    An empty or full mask has no contrast to show (0): nothing separates it from the rest.
    """
    inside = mask.astype(bool)
    if inside.all() or not inside.any():
        return 0.0
    values = saliency.astype(np.float64) / 255.0
    return float(values[inside].mean() - values[~inside].mean())


@dataclass
class PseudoLabels:
    """The SaliencyCut mask of every image of a store (row ``i`` is ``store.images[i]``)."""

    store: Store
    masks: np.ndarray  # N x S x S uint8, 0/1
    area: np.ndarray  # N float
    contrast: np.ndarray  # N float
    cache_folder: Path

    def reasons(self, rule: ConfidenceRule) -> list[str]:
        """Per row: why the rule drops it, "" when kept."""
        return [rule.reason(float(a), float(c)) for a, c in zip(self.area, self.contrast)]

    def kept(self, rule: ConfidenceRule) -> np.ndarray:
        """Boolean N: the rows whose mask the rule keeps."""
        return np.array([not r for r in self.reasons(rule)], dtype=bool)


def pseudo_labels(
    store: Store,
    workers: int | None = None,
    progress: bool = True,
    cache_root: str | Path | None = None,
) -> PseudoLabels:
    """Masks of ``store`` from the hashed SaliencyCut cache, filling it first where it misses
    (the cache's progress bar; entries computed from the source images, see
    :mod:`sslseg.saliency.cache.filling`)."""
    cache, rows = fill_store(store, 1, workers, progress, root=cache_root)
    n, side = len(store), store.side
    masks = np.zeros((n, side, side), dtype=np.uint8)
    area, contrast = np.zeros(n), np.zeros(n)
    for i, key in enumerate(store.hashes):
        entry = cache.entry(key)
        masks[i] = entry.mask
        area[i] = mask_area(masks[i])
        contrast[i] = saliency_contrast(masks[i], entry.saliency)
    return PseudoLabels(store, masks, area, contrast, cache.folder)


def file_name(item_id: str) -> str:
    """A flat file stem for a store id (class folders and split prefixes joined by ``__``)."""
    stem = item_id.replace("/", "__").replace("\\", "__")
    # an image stem ending like a mask would be read as one
    return stem + "_img" if stem.endswith(MASK_SUFFIX) else stem


@dataclass(frozen=True)
class Part:
    """What one split folder holds: store rows, their masks (0/1) and where they come from."""

    rows: np.ndarray
    masks: np.ndarray  # len(rows) x S x S
    kind: str  # "pseudo" or "real": recorded in the manifest
    # the store ``rows`` index when it is not the folder's (pseudo-masks of another source)
    store: Store | None = None


def write_seg_folder(
    folder: Path,
    store: Store,
    parts: Mapping[str, Part],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``parts`` (split name -> :class:`Part`; ``""`` for one flat folder) as a seg-folder.

    Built under a temporary name and renamed when complete, like a store, so a kill leaves no
    half folder and an existing complete folder is reused as it is. Returns ``folder``.
    """
    folder = Path(folder)
    if (folder / MANIFEST).is_file():
        return folder
    bad = sorted(set(parts) - {"", *FOLDER_OF})
    if bad:
        raise SslsegError(f"pseudo-labels: unknown split(s) {bad} (train, val, test)")
    manifest: dict[str, Any] = {"store": store.root.name, "parts": {}, **(extra or {})}
    with building(folder) as tmp:
        for split, part in parts.items():
            where = tmp / FOLDER_OF[split] if split else tmp
            manifest["parts"][split or "all"] = _write_part(where, part.store or store, part)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return folder


def _write_part(where: Path, store: Store, part: Part) -> dict[str, Any]:
    if len(part.rows) != len(part.masks):
        raise SslsegError(f"pseudo-labels: {len(part.rows)} rows but {len(part.masks)} masks")
    if part.masks.size and (part.masks == IGNORE).any():
        # the seg-folder layout has no ignore value: a 255 would be read as foreground
        raise SslsegError(
            "config: border: masks with ignored pixels cannot be written as a seg-folder; "
            "use border=foreground or border=background"
        )
    where.mkdir(parents=True, exist_ok=True)
    names = []
    for row, mask in zip(part.rows, part.masks, strict=True):
        name = file_name(store.ids[int(row)])
        image = np.ascontiguousarray(store.images[int(row)][:, :, ::-1])  # cv2 writes BGR
        _imwrite(where / f"{name}.png", image)
        _imwrite(where / f"{name}{MASK_SUFFIX}.png", (mask > 0).astype(np.uint8) * 255)
        names.append(name)
    ids = [store.ids[int(r)] for r in part.rows]
    return {"kind": part.kind, "store": store.root.name, "ids": ids, "names": names}


def _imwrite(path: Path, array: np.ndarray) -> None:
    if not cv2.imwrite(str(path), array):
        raise SslsegError(f"{path}: could not write the file")


def pseudo_parts(
    labels: PseudoLabels, rule: ConfidenceRule, splits: Mapping[str, Sequence[int]]
) -> dict[str, Part]:
    """Pseudo-mask parts of the rows in ``splits`` (split -> rows of ``labels.store``), only
    those ``rule`` keeps."""
    kept = labels.kept(rule)
    parts = {}
    for split, rows in splits.items():
        rows = np.asarray(rows, dtype=np.int64)
        rows = rows[kept[rows]]
        parts[split] = Part(rows, labels.masks[rows], "pseudo", labels.store)
    return parts
