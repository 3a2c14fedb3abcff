"""The saliency cache's on-disk format: folder name, ``meta.json``, fixed-size rows, the index.

One cache folder per (dataset, side, scale, threshold, source side, saliency code), by default
``$SSLSEG_CACHE/saliency/<source>-<side>px-x<scale>-t<threshold>-w<source_side>-v<version>-``
``<code>/``, where ``<code>`` is :func:`algorithm_fingerprint` of the saliency sources:

- ``meta.json``: the settings and the fixed row shapes;
- ``labels.bin``: rows of ``H x W`` region labels (uint8 when the palette bound fits, else
  uint16; ``H = W = side * scale``), ``palettes.bin``: ``P x 3`` uint8 mean colours (unused
  entries zero), ``salient.bin``: ``P`` flags (label is part of the SaliencyCut object; the
  mask is ``salient[labels]``), ``counts.bin``: int32 number of labels, ``maps.bin``: ``H x W``
  uint8 RC saliency map. Each is a flat, memory-mapped array of fixed-size rows;
- ``index.npy``: the content hash of every committed row, in row order.

Crash safety: rows are appended (and fsynced) first, then a new ``index.npy`` is written under a
temporary name and renamed over the old one. A reader maps only the rows the index names, so a
kill at any point leaves either the old or the new index and never a half-written entry; bytes
past the committed rows are truncated by the next writer. Concurrency: appends and the index
commit happen under the folder lock (:mod:`sslseg.saliency.cache.locking`); the expensive
saliency work runs outside it (:mod:`sslseg.saliency.cache.filling`), and a writer skips hashes
another process committed meanwhile (so two fillers may duplicate some work, never entries).

``P``, the palette bound (:func:`palette_bound`): entries are computed on a working copy of the
source image whose longer side is at most ``L = max(source_side, H, W)``; Felzenszwalb-
Huttenlocher with ``min_size = 200`` (RC's TPAMI setting) leaves no component smaller than 200
px (every edge of a small component is visited in the merge pass), so that copy has at most
``L^2 / 200`` regions, :func:`split_by_mask` at most doubles them, and resizing the label map to
``H x W`` can only drop labels; nor can there be more labels than the ``H W`` pixels.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sslseg.errors import SslsegError
from sslseg.saliency.batch import SCALES
from sslseg.saliency.cache.locking import atomic_write, fsync_dir, locked
from sslseg.saliency.cut import THRESHOLD
from sslseg.saliency.rc import SEG_MIN_SIZE

#: 2: entries computed from the source images (at most SOURCE_SIDE px), then resized to the
#: rows; 1: computed on the store images themselves (64-128 px, much worse: docs/saliency.md)
CACHE_VERSION = 2
#: longer side of the source copy saliency is computed on (larger sources are downscaled);
#: chosen on the 150 Pet originals: the best SaliencyCut IoU at 64 and 128 px of 192-512
#: (docs/results/saliency-cache-resolution.txt)
SOURCE_SIDE = 256
FIELDS = ("labels", "palettes", "salient", "counts", "maps")
#: the modules whose code decides an entry's content (hashed into the folder name)
ALGORITHM_FILES = (
    "_image.py",
    "hc.py",
    "rc.py",
    "regions.py",
    "cut.py",
    "batch.py",
    "cache/filling.py",
)


def palette_bound(height: int, width: int, source_side: int = SOURCE_SIDE) -> int:
    """Most labels an entry of ``height x width`` rows computed at ``source_side`` can hold."""
    longest = max(source_side, height, width)
    return min(height * width, 2 * max(1, longest * longest // SEG_MIN_SIZE)) + 2


def default_folder(
    source: str,
    side: int,
    scale: int = 1,
    threshold: float = THRESHOLD,
    root: str | Path | None = None,
    source_side: int = SOURCE_SIDE,
) -> Path:
    """Where the cache of these settings lives (see the module docstring)."""
    from sslseg.data.store import cache_dir

    base = Path(root) if root is not None else cache_dir() / "saliency"
    name = f"{source}-{side}px-x{scale}-t{round(threshold * 255)}-w{source_side}-v{CACHE_VERSION}"
    return base / f"{name}-{algorithm_fingerprint()}"


def algorithm_fingerprint() -> str:
    """8 hex digits of the saliency code (HC, RC, regions, SaliencyCut, pipeline, filling).

    Part of the default folder name, so that entries computed by an older version of the
    algorithm are never served after it changes (a new folder is filled instead).
    """
    h = hashlib.blake2b(digest_size=4)
    here = Path(__file__).resolve().parent.parent
    for name in ALGORITHM_FILES:
        path = here / name
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()


@dataclass(frozen=True)
class Entry:
    """One image's cached analysis (at the processed scale)."""

    labels: np.ndarray  # H x W int
    palette: np.ndarray  # K x 3 uint8
    salient: np.ndarray  # K bool
    saliency: np.ndarray  # H x W uint8 RC map (0..255)

    @property
    def mask(self) -> np.ndarray:
        """H x W bool SaliencyCut mask."""
        return self.salient[self.labels]

    def region_image(self) -> np.ndarray:
        """H x W x 3 uint8: every region painted with its own mean colour."""
        return self.palette[self.labels]


class SaliencyCache:
    """The memory-mapped cache in ``folder`` (created with these settings when missing).

    ``labels``, ``palettes``, ``salient``, ``counts``, ``maps`` are read-only arrays over the
    committed rows; :meth:`rows` maps content hashes to row numbers (-1 for a miss).
    ``source_side``: longer side of the source copy entries are computed on (see
    :mod:`sslseg.saliency.cache.filling`).
    """

    def __init__(
        self,
        folder: str | Path,
        side: int | None = None,
        scale: int = 1,
        threshold: float = THRESHOLD,
        source_side: int = SOURCE_SIDE,
    ) -> None:
        self.folder = Path(folder)
        meta_path = self.folder / "meta.json"
        if not meta_path.is_file():
            if side is None:
                raise SslsegError(f"{self.folder}: not a saliency cache (no meta.json)")
            self._create(side, scale, threshold, source_side)
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as exc:
            raise SslsegError(f"{meta_path}: unreadable cache metadata ({exc})") from None
        if meta.get("version") != CACHE_VERSION:
            raise SslsegError(
                f"{meta_path}: cache version {meta.get('version')}, this sslseg "
                f"writes {CACHE_VERSION}; delete the folder to rebuild it"
            )
        wanted = {
            "side": side,
            "scale": scale,
            "threshold": threshold,
            "source_side": source_side,
        }
        for key, value in wanted.items():
            if key == "side" and value is None:
                continue
            if meta[key] != value:
                raise SslsegError(
                    f"{meta_path}: cache was built with {key}={meta[key]}, asked for {key}={value}"
                )
        self.meta = meta
        self.side, self.scale, self.threshold = meta["side"], meta["scale"], meta["threshold"]
        self.source_side = meta["source_side"]
        self.height = self.width = self.side * self.scale
        self.palette_size = meta["palette_size"]
        self.label_dtype = np.dtype(meta["label_dtype"])
        self._shapes: dict[str, tuple[tuple[int, ...], np.dtype]] = {
            "labels": ((self.height, self.width), self.label_dtype),
            "palettes": ((self.palette_size, 3), np.dtype(np.uint8)),
            "salient": ((self.palette_size,), np.dtype(np.bool_)),
            "counts": ((), np.dtype(np.int32)),
            "maps": ((self.height, self.width), np.dtype(np.uint8)),
        }
        self.refresh()

    # ------------------------------------------------------------------ layout

    def _create(self, side: int, scale: int, threshold: float, source_side: int) -> None:
        if scale not in SCALES:
            raise SslsegError(f"scale: {scale} is not one of {SCALES}")
        if side < 8:
            raise SslsegError(f"side: {side} is too small (at least 8)")
        if source_side < 8:
            raise SslsegError(f"source_side: {source_side} is too small (at least 8)")
        self.folder.mkdir(parents=True, exist_ok=True)
        h = side * scale
        bound = palette_bound(h, h, source_side)
        meta = {
            "version": CACHE_VERSION,
            "side": side,
            "scale": scale,
            "threshold": threshold,
            "source_side": source_side,
            "palette_size": bound,
            "label_dtype": "uint8" if bound <= 256 else "uint16",
            "algorithm": "sslseg.saliency.batch.analyse on the source image (longer side at "
            "most source_side, at least side * scale): RC regions split by the SaliencyCut "
            "mask of the RC map (Cheng et al. TPAMI 2015), then resized to the rows "
            "(sslseg.saliency.cache.filling.shrink)",
            "key": "sslseg.data.store.content_hash of the store image",
        }
        with locked(self.folder):
            path = self.folder / "meta.json"
            if not path.is_file():  # another process may have created it while we waited
                atomic_write(path, json.dumps(meta, indent=1).encode())

    def _row_bytes(self, name: str) -> int:
        shape, dtype = self._shapes[name]
        return int(np.prod(shape, dtype=np.int64)) * dtype.itemsize

    def _read_index(self) -> np.ndarray:
        path = self.folder / "index.npy"
        if not path.is_file():
            return np.array([], dtype="<U32")
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise SslsegError(f"{path}: unreadable cache index ({exc})") from None

    def refresh(self) -> None:
        """Re-read the committed index (rows another process added become visible)."""
        hashes = self._read_index()
        n = len(hashes)
        self.hashes = hashes
        self._row = {str(h): i for i, h in enumerate(hashes.tolist())}
        for name, (shape, dtype) in self._shapes.items():
            path = self.folder / f"{name}.bin"
            if n == 0:
                arr = np.empty((0, *shape), dtype=dtype)
            else:
                need = n * self._row_bytes(name)
                have = path.stat().st_size if path.is_file() else 0
                if have < need:
                    raise SslsegError(
                        f"{path}: {have} bytes but the index needs {need}; the "
                        f"cache is damaged, delete {self.folder} to rebuild it"
                    )
                arr = np.memmap(path, dtype=dtype, mode="r", shape=(n, *shape))
            setattr(self, name, arr)

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        return len(self.hashes)

    def __contains__(self, key: str) -> bool:
        return key in self._row

    def rows(self, keys: Sequence[str]) -> np.ndarray:
        """Row of every content hash in ``keys`` (int64, -1 where it is not cached)."""
        return np.array([self._row.get(k, -1) for k in keys], dtype=np.int64)

    def entry(self, key: str) -> Entry:
        """The cached analysis of the image with content hash ``key`` (KeyError on a miss)."""
        i = self._row[key]
        k = int(self.counts[i])
        return Entry(
            np.asarray(self.labels[i]),
            np.asarray(self.palettes[i, :k]),
            np.asarray(self.salient[i, :k]),
            np.asarray(self.maps[i]),
        )

    # ------------------------------------------------------------------ writing

    def add(self, keys: Sequence[str], results: Sequence[tuple[np.ndarray, ...]]) -> int:
        """Commit analyses (``(labels, palette, salient, map_u8)`` per key); returns rows added.

        Keys already committed (by anyone) or repeated in ``keys`` are skipped.
        """
        rows: dict[str, list[Any]] = {name: [] for name in FIELDS}
        with locked(self.folder):
            self.refresh()
            fresh: list[str] = []
            seen = set(self._row)
            for key, res in zip(keys, results, strict=True):
                if key in seen:
                    continue
                seen.add(key)
                fresh.append(key)
                for name, value in zip(FIELDS, self._pack(key, res), strict=True):
                    rows[name].append(value)
            if not fresh:
                return 0
            n = len(self.hashes)
            for name in FIELDS:
                path = self.folder / f"{name}.bin"
                committed = n * self._row_bytes(name)
                with open(path, "ab") as fh:
                    # bytes past the committed rows are from a writer that died before its commit
                    fh.truncate(committed)
                    fh.write(np.ascontiguousarray(np.stack(rows[name])).tobytes())
                    fh.flush()
                    os.fsync(fh.fileno())
            index = np.concatenate([self.hashes, np.array(fresh)]).astype(str)
            tmp = self.folder / f".index.{os.getpid()}.tmp.npy"
            with open(tmp, "wb") as fh:
                np.save(fh, index, allow_pickle=False)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.folder / "index.npy")
            fsync_dir(self.folder)
            self.refresh()
        return len(fresh)

    def _pack(self, key: str, res: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        labels, palette, salient, smap = res
        k = len(palette)
        if labels.shape != (self.height, self.width):
            raise SslsegError(
                f"saliency cache: {key}: label map {labels.shape}, cache rows are "
                f"{(self.height, self.width)}"
            )
        if k > self.palette_size:
            raise SslsegError(
                f"saliency cache: {key}: {k} regions exceed the bound {self.palette_size}"
            )
        pal = np.zeros((self.palette_size, 3), np.uint8)
        pal[:k] = palette
        sal = np.zeros(self.palette_size, np.bool_)
        sal[:k] = salient
        return (labels.astype(self.label_dtype), pal, sal, np.int32(k), smap.astype(np.uint8))

    def fill(
        self,
        images: Sequence[np.ndarray] | np.ndarray,
        keys: Sequence[str] | None = None,
        workers: int = 1,
        progress: bool = True,
        on_commit: Callable[[int], None] | None = None,
        sources: Callable[[int], np.ndarray] | Sequence[np.ndarray] | None = None,
        resize: str = "squash",
    ) -> int:
        """Analyse every image whose key is not cached yet and commit it; returns rows added.

        See :func:`sslseg.saliency.cache.filling.fill` (``sources``: the source image of each
        of ``images``; without them every image is its own source).
        """
        from sslseg.saliency.cache.filling import fill

        return fill(self, images, keys, workers, progress, on_commit, sources, resize)
