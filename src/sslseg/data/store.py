"""The decoded store: a source decoded once into memory-mapped uint8 arrays at one side.

Layout of a store folder: ``images.npy`` (N x S x S x 3), ``masks.npy`` (N x S x S; 0/1 and
255 = ignore) when the source has masks, ``labels.npy`` (N, -1 = none) and ``index.json``
(source fingerprint, side, resize rule, ids, a content hash per image). The folder is built
under a temporary name and renamed when complete, so a kill never leaves a half store and two
processes building the same store both end up using one complete copy.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from sslseg.atomic import building
from sslseg.data.sources import Source, make_source
from sslseg.errors import SslsegError

RESIZE_RULES = ("squash", "center-crop")
# part of the store folder's name: a store decoded under an older rule is never reused
# (2: masks on the image's geometry, see resize_mask; mixed shrink/grow resized per axis)
# 3: the layout's own splits and groups are recorded in the index
STORE_VERSION = 3


@dataclass
class Store:
    """Decoded arrays of one source at one side; ``images[i]`` is item ``ids[i]``."""

    root: Path
    images: np.ndarray
    masks: np.ndarray | None
    labels: np.ndarray
    ids: list[str]
    hashes: list[str]
    class_names: list[str]
    side: int
    source: str
    #: the layout's split of each item ("train" / "val" / "test", "" where it has none)
    splits: list[str] = dataclasses.field(default_factory=list)
    #: items sharing a group come from one original (Roboflow's augmented copies)
    groups: list[str] = dataclasses.field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, rows: np.ndarray) -> Store:
        """The store restricted to ``rows`` (in memory; hashes and ids follow the rows)."""
        rows = np.asarray(rows, dtype=np.int64)
        return dataclasses.replace(
            self,
            images=np.ascontiguousarray(self.images[rows]),
            masks=None if self.masks is None else np.ascontiguousarray(self.masks[rows]),
            labels=self.labels[rows],
            ids=[self.ids[i] for i in rows],
            hashes=[self.hashes[i] for i in rows],
            splits=[self.splits[i] for i in rows] if self.splits else [],
            groups=[self.groups[i] for i in rows] if self.groups else [],
        )


def cache_dir() -> Path:
    """``$SSLSEG_CACHE``, else the user's cache directory."""
    if os.environ.get("SSLSEG_CACHE"):
        return Path(os.environ["SSLSEG_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sslseg"


def content_hash(image: np.ndarray) -> str:
    """A fast hash of decoded pixels (shape included): equal content, equal key."""
    h = hashlib.blake2b(digest_size=16)
    h.update(str(image.shape).encode())
    h.update(np.ascontiguousarray(image).data)
    return h.hexdigest()


def crop_to_rule(image: np.ndarray, rule: str) -> np.ndarray:
    """The part of ``image`` a resize rule keeps: all of it, or its centre square."""
    if rule == "center-crop":
        h, w = image.shape[:2]
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        image = image[top : top + s, left : left + s]
    return image


def _filter(src: int, dst: int) -> int:
    return cv2.INTER_AREA if dst < src else cv2.INTER_LINEAR


def _resize(image: np.ndarray, side: int) -> np.ndarray:
    # Each axis gets area averaging when it shrinks and bilinear when it grows; both are
    # pixel-centre aligned ((x + 0.5) * scale - 0.5). One cv2 call when both axes agree; a
    # single INTER_AREA call with one axis shrinking and the other growing falls back to a
    # sampling mode that shifts the shrinking axis (measured +0.11 px at 500 -> 256 and
    # +0.39 px at 500 -> 64 against 40 -> 64), so that case is done one axis at a time.
    h, w = image.shape[:2]
    fx, fy = _filter(w, side), _filter(h, side)
    if w == side:
        fx = fy
    if h == side:
        fy = fx
    if fx == fy:
        return cv2.resize(image, (side, side), interpolation=fx)
    dtype = image.dtype
    half = cv2.resize(image.astype(np.float32), (side, h), interpolation=fx)
    out = cv2.resize(half, (side, side), interpolation=fy)
    if dtype == np.uint8:
        out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out


def resize_image(image: np.ndarray, side: int, rule: str) -> np.ndarray:
    """``image`` as ``side`` x ``side``: squashed, or centre-cropped to a square first."""
    image = crop_to_rule(image, rule)
    if image.shape[0] == side and image.shape[1] == side:
        return np.ascontiguousarray(image)
    return _resize(image, side)


def resize_mask(mask: np.ndarray, side: int, rule: str) -> np.ndarray:
    """``mask`` (label values, e.g. 0/1 and 255 = ignore) on the geometry of :func:`resize_image`.

    Each label's indicator goes through the image's own filter and every output pixel takes
    the label that covers most of it (ties: the smaller value), so the mask follows the
    image's geometry whatever the filter. INTER_NEAREST, the former rule, samples the
    top-left source pixel of each footprint: the mask sat +0.5 px right and down of the
    image at 500 -> 64 (+0.4 px when enlarging 40 -> 64), and -0.5 px in a horizontally
    flipped copy. INTER_NEAREST_EXACT is centred too (disc centroids within 0.02 px of the
    image's on average, as here) but is a point sample: at 500x375 -> 64 it disagreed with
    the image's half-intensity edge on 0.64 % of a disc's pixels against 0.18 % here, and
    when enlarging (40x30 -> 64) it draws a staircase (5.9 % against 4.5 %). The ignore
    share of the Pet sample's trimaps stays 12.5 %.
    """
    mask = crop_to_rule(mask, rule)
    if mask.shape[0] == side and mask.shape[1] == side:
        return np.ascontiguousarray(mask)
    values = np.unique(mask)
    if len(values) == 1:
        return np.full((side, side), values[0], dtype=mask.dtype)
    cover = np.stack([_resize((mask == v).astype(np.float32), side) for v in values])
    return values[np.argmax(cover, axis=0)].astype(mask.dtype)


def _decode(
    source: Source, item: Any, side: int, rule: str
) -> tuple[np.ndarray, np.ndarray | None]:
    image = source.read_image(item)
    mask = None
    if source.has_masks:
        mask = source.read_mask(item)
        if mask.shape != image.shape[:2]:
            raise SslsegError(
                f"{item.mask}: mask is {mask.shape[1]}x{mask.shape[0]} but its image "
                f"is {image.shape[1]}x{image.shape[0]}"
            )
        mask = resize_mask(mask, side, rule)
    return resize_image(image, side, rule), mask


def build_store(
    source: Source,
    side: int,
    resize: str = "squash",
    root: Path | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> Store:
    """Decode ``source`` at ``side`` into the cache (or reuse a matching store)."""
    if side < 8:
        raise SslsegError(f"config: side: {side} is too small (at least 8)")
    if resize not in RESIZE_RULES:
        raise SslsegError(f"config: resize: '{resize}' is not one of {', '.join(RESIZE_RULES)}")
    items = source.items()
    fingerprint = source.fingerprint()
    folder = (root or cache_dir()) / f"{source.name}-{side}-{resize}-{fingerprint}-v{STORE_VERSION}"
    if (folder / "index.json").is_file():
        return open_store_folder(folder)
    with building(folder) as tmp:
        n = len(items)
        images = np.lib.format.open_memmap(tmp / "images.npy", "w+", np.uint8, (n, side, side, 3))
        masks = (
            np.lib.format.open_memmap(tmp / "masks.npy", "w+", np.uint8, (n, side, side))
            if source.has_masks
            else None
        )
        hashes = [""] * n

        bad: list[str] = []  # every bad file, so one run names them all

        def work(i: int) -> None:
            try:
                image, mask = _decode(source, items[i], side, resize)
            except SslsegError as exc:
                bad.append(str(exc))
                return
            images[i] = image
            hashes[i] = content_hash(image)
            if masks is not None:
                masks[i] = mask

        with ThreadPoolExecutor(workers or min(8, os.cpu_count() or 1)) as pool:
            bar = tqdm(
                total=n,
                desc=f"decoding {source.name} at {side}px",
                disable=not progress,
                unit="img",
                leave=False,
            )
            for _ in pool.map(work, range(n)):
                bar.update()
            bar.close()
        if bad:
            raise SslsegError(bad_files_message(sorted(bad), n))
        images.flush()
        if masks is not None:
            masks.flush()
        np.save(tmp / "labels.npy", np.array([it.label for it in items], dtype=np.int64))
        index = {
            "version": STORE_VERSION,
            "source": source.name,
            "root": str(source.root),
            "options": source.options(),
            "fingerprint": fingerprint,
            "side": side,
            "resize": resize,
            "ids": [it.id for it in items],
            "hashes": hashes,
            "class_names": source.class_names,
            "splits": [it.split for it in items],
            "groups": [it.group or it.id for it in items],
        }
        (tmp / "index.json").write_text(json.dumps(index))
    return open_store_folder(folder)


def bad_files_message(errors: list[str], total: int, shown: int = 10) -> str:
    """One message for every file that failed: the first ``shown``, then a count."""
    if len(errors) == 1:
        return errors[0]
    more = f"; and {len(errors) - shown} more" if len(errors) > shown else ""
    return f"{len(errors)} of {total} files are bad: " + "; ".join(errors[:shown]) + more


def open_store_folder(folder: Path) -> Store:
    """Memory-map a complete store folder."""
    index = json.loads((folder / "index.json").read_text())
    masks_path = folder / "masks.npy"
    return Store(
        root=folder,
        images=np.load(folder / "images.npy", mmap_mode="r"),
        masks=np.load(masks_path, mmap_mode="r") if masks_path.is_file() else None,
        labels=np.load(folder / "labels.npy"),
        ids=index["ids"],
        hashes=index["hashes"],
        class_names=index["class_names"],
        side=index["side"],
        source=index["source"],
        splits=index.get("splits", [""] * len(index["ids"])),
        groups=index.get("groups", list(index["ids"])),
    )


def open_store(
    source: str,
    root: str | Path | None = None,
    side: int = 128,
    resize: str = "squash",
    cache: Path | None = None,
    progress: bool = True,
    **source_options: Any,
) -> Store:
    """Build or reuse the store of source ``source`` over folder ``root`` at ``side``."""
    return build_store(
        make_source(source, root, **source_options), side, resize, cache, progress=progress
    )
