"""The decoded store: a source decoded once into memory-mapped uint8 arrays at one side.

Layout of a store folder: ``images.npy`` (N x S x S x 3), ``masks.npy`` (N x S x S; 0/1 and
255 = ignore) when the source has masks, ``labels.npy`` (N, -1 = none) and ``index.json``
(source fingerprint, side, resize rule, ids, a content hash per image). The folder is built
under a temporary name and renamed when complete, so a kill never leaves a half store and two
processes building the same store both end up using one complete copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from sslseg.data.sources import Source, make_source
from sslseg.errors import SslsegError

RESIZE_RULES = ("squash", "center-crop")
STORE_VERSION = 1


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

    def __len__(self) -> int:
        return len(self.ids)


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


def resize_image(image: np.ndarray, side: int, rule: str, nearest: bool = False) -> np.ndarray:
    """``image`` as ``side`` x ``side``: squashed, or centre-cropped to a square first."""
    if rule == "center-crop":
        h, w = image.shape[:2]
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        image = image[top : top + s, left : left + s]
    if image.shape[0] == side and image.shape[1] == side:
        return np.ascontiguousarray(image)
    shrinking = image.shape[0] * image.shape[1] > side * side
    if nearest:
        interp = cv2.INTER_NEAREST
    else:
        interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (side, side), interpolation=interp)


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
        mask = resize_image(mask, side, rule, nearest=True)
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
    folder = (root or cache_dir()) / f"{source.name}-{side}-{resize}-{fingerprint}"
    if (folder / "index.json").is_file():
        return open_store_folder(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        n = len(items)
        images = np.lib.format.open_memmap(tmp / "images.npy", "w+", np.uint8, (n, side, side, 3))
        masks = (
            np.lib.format.open_memmap(tmp / "masks.npy", "w+", np.uint8, (n, side, side))
            if source.has_masks
            else None
        )
        hashes = [""] * n

        def work(i: int) -> None:
            image, mask = _decode(source, items[i], side, resize)
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
        }
        (tmp / "index.json").write_text(json.dumps(index))
        try:
            tmp.rename(folder)
        except OSError:  # another process finished the same store first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return open_store_folder(folder)


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
