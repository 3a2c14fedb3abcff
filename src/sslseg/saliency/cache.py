"""Offline saliency cache keyed by image content (the study's "offline augmentation with hashing").

Rezaei et al. (seed study, section 3.3.2): SaliencyCut ("SGD") is deterministic, so its
segmentation of an image never changes except in colour; it is computed once per image, found
again through a hash of the decoded pixels, and only recoloured at training time. Here the key
is the store's content hash (:func:`sslseg.data.store.content_hash`: blake2b of the decoded
``S x S x 3`` pixels the pretraining sees), so a renamed or duplicated file hits the same entry.

One cache folder per (dataset, side, scale, threshold, saliency code), by default
``$SSLSEG_CACHE/saliency/<source>-<side>px-x<scale>-t<threshold>-v<version>-<code>/``, where
``<code>`` is :func:`algorithm_fingerprint` of the saliency sources:

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
commit happen under an exclusive ``fcntl.flock`` on ``.lock``; the expensive saliency work runs
outside it, and a writer skips hashes another process committed meanwhile (so two fillers may
duplicate some work, never entries).

``P``, the palette bound: Felzenszwalb-Huttenlocher with ``min_size = 50`` leaves no component
smaller than 50 px (every edge of a small component is visited in the merge pass), so an
``H x W`` image has at most ``H W / 50`` regions, and :func:`split_by_mask` at most doubles that.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import multiprocessing
import multiprocessing.context
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from sslseg.errors import SslsegError
from sslseg.saliency.batch import SCALES, _init_worker, analyse
from sslseg.saliency.cut import THRESHOLD
from sslseg.saliency.regions import MIN_SIZE

CACHE_VERSION = 1
FIELDS = ("labels", "palettes", "salient", "counts", "maps")
#: rows computed between two commits: a kill loses at most this much work
COMMIT_EVERY = 256


def palette_bound(height: int, width: int) -> int:
    """Most labels :func:`sslseg.saliency.batch.analyse` can return for an ``H x W`` image."""
    return 2 * max(1, (height * width) // MIN_SIZE) + 2


def default_folder(
    source: str,
    side: int,
    scale: int = 1,
    threshold: float = THRESHOLD,
    root: str | Path | None = None,
) -> Path:
    """Where the cache of (``source``, ``side``, ``scale``, ``threshold``) lives."""
    from sslseg.data.store import cache_dir

    base = Path(root) if root is not None else cache_dir() / "saliency"
    name = f"{source}-{side}px-x{scale}-t{round(threshold * 255)}-v{CACHE_VERSION}"
    return base / f"{name}-{algorithm_fingerprint()}"


def algorithm_fingerprint() -> str:
    """8 hex digits of the saliency code (HC, RC, regions, SaliencyCut, pipeline) source.

    Part of the default folder name, so that entries computed by an older version of the
    algorithm are never served after it changes (a new folder is filled instead).
    """
    import hashlib

    h = hashlib.blake2b(digest_size=4)
    here = Path(__file__).parent
    for name in ("_image.py", "hc.py", "rc.py", "regions.py", "cut.py", "batch.py"):
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
    """The memory-mapped cache in ``folder`` (created with ``side``/``scale`` when missing).

    ``labels``, ``palettes``, ``salient``, ``counts``, ``maps`` are read-only arrays over the
    committed rows; :meth:`rows` maps content hashes to row numbers (-1 for a miss).
    """

    def __init__(
        self,
        folder: str | Path,
        side: int | None = None,
        scale: int = 1,
        threshold: float = THRESHOLD,
    ) -> None:
        self.folder = Path(folder)
        meta_path = self.folder / "meta.json"
        if not meta_path.is_file():
            if side is None:
                raise SslsegError(f"{self.folder}: not a saliency cache (no meta.json)")
            self._create(side, scale, threshold)
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as exc:
            raise SslsegError(f"{meta_path}: unreadable cache metadata ({exc})") from None
        if meta.get("version") != CACHE_VERSION:
            raise SslsegError(
                f"{meta_path}: cache version {meta.get('version')}, this sslseg "
                f"writes {CACHE_VERSION}; delete the folder to rebuild it"
            )
        wanted = {"side": side, "scale": scale, "threshold": threshold}
        for key, value in wanted.items():
            if key == "side" and value is None:
                continue
            if meta[key] != value:
                raise SslsegError(
                    f"{meta_path}: cache was built with {key}={meta[key]}, asked for {key}={value}"
                )
        self.meta = meta
        self.side, self.scale, self.threshold = meta["side"], meta["scale"], meta["threshold"]
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

    def _create(self, side: int, scale: int, threshold: float) -> None:
        if scale not in SCALES:
            raise SslsegError(f"scale: {scale} is not one of {SCALES}")
        if side < 8:
            raise SslsegError(f"side: {side} is too small (at least 8)")
        self.folder.mkdir(parents=True, exist_ok=True)
        h = side * scale
        bound = palette_bound(h, h)
        meta = {
            "version": CACHE_VERSION,
            "side": side,
            "scale": scale,
            "threshold": threshold,
            "palette_size": bound,
            "label_dtype": "uint8" if bound <= 256 else "uint16",
            "algorithm": "sslseg.saliency.batch.analyse: RC regions split by the SaliencyCut "
            "mask of the RC map (Cheng et al. TPAMI 2015)",
            "key": "sslseg.data.store.content_hash of the store image",
        }
        with self._locked():
            path = self.folder / "meta.json"
            if not path.is_file():  # another process may have created it while we waited
                _atomic_write(path, json.dumps(meta, indent=1).encode())

    def _row_bytes(self, name: str) -> int:
        shape, dtype = self._shapes[name]
        return int(np.prod(shape, dtype=np.int64)) * dtype.itemsize

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

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
        rows = {name: [] for name in FIELDS}
        with self._locked():
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
            _fsync_dir(self.folder)
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
    ) -> int:
        """Analyse every image whose key is not cached yet and commit it; returns rows added.

        ``images``: ``N x S x S x 3`` uint8 (a store's memory map, say); ``keys``: their
        content hashes (computed when omitted). Misses are analysed on ``workers`` processes
        and committed every :data:`COMMIT_EVERY` rows; ``on_commit(rows_so_far)`` runs after
        each commit (tests raise from it to simulate a kill).
        """
        from sslseg.data.store import content_hash

        if keys is None:
            keys = [content_hash(np.asarray(im)) for im in images]
        if len(keys) != len(images):
            raise SslsegError(f"saliency cache: {len(keys)} keys for {len(images)} images")
        self.refresh()
        first: dict[str, int] = {}
        for i, key in enumerate(keys):
            if key not in self._row and key not in first:
                first[key] = i
        todo = list(first.items())
        if not todo:
            return 0
        fn = partial(_analyse_row, scale=self.scale, threshold=self.threshold)
        workers = max(1, min(workers, len(todo)))
        added = 0
        bar = tqdm(
            total=len(todo),
            desc=f"saliency cache x{self.scale}",
            unit="img",
            disable=not progress,
            dynamic_ncols=True,
        )
        pool = None
        try:
            if workers > 1:
                pool = ProcessPoolExecutor(
                    max_workers=workers, mp_context=_pool_context(), initializer=_init_worker
                )
            for start in range(0, len(todo), COMMIT_EVERY):
                span = min(COMMIT_EVERY, len(todo) - start)
                chunk = [
                    (k, i) for k, i in todo[start : start + span] if k not in self._row
                ]  # another process may have added some
                bar.update(span - len(chunk))
                if not chunk:
                    continue
                arrays = (np.array(images[i]) for _, i in chunk)
                results = []
                it = pool.map(fn, arrays, chunksize=4) if pool is not None else map(fn, arrays)
                for res in it:
                    results.append(res)
                    bar.update(1)
                added += self.add([k for k, _ in chunk], results)
                if on_commit is not None:
                    on_commit(added)
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
            bar.close()
        return added


def analyse_seeded(rgb: np.ndarray, scale: int = 1, threshold: float = THRESHOLD) -> Any:
    """:func:`analyse` with OpenCV's RNG re-seeded first.

    GrabCut initialises its colour GMMs with k-means on ``cv::theRNG()``, so without this the
    mask (and the labels split along it) would depend on what the process analysed before;
    seeding makes every entry a function of the pixels alone, whichever worker computed it.
    """
    import cv2

    cv2.setRNGSeed(0)
    return analyse(rgb, scale=scale, threshold=threshold)


def _pool_context() -> multiprocessing.context.BaseContext:
    # Not "fork": a parent that has run OpenMP/OpenCV thread pools (torch, cv2) can leave a
    # lock held in the child, which then hangs. A fork server starts clean, imports this
    # module once (Numba kernels load from their disk cache) and forks workers from there.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    return ctx


def _analyse_row(rgb: np.ndarray, scale: int, threshold: float) -> tuple[np.ndarray, ...]:
    # compact result for the trip back from the worker process
    res = analyse_seeded(rgb, scale, threshold)
    k = res.palette.shape[0]
    labels = res.labels.astype(np.uint8 if k <= 256 else np.uint16)
    smap = np.clip(np.round(res.rc * 255), 0, 255).astype(np.uint8)
    return labels, res.palette, res.salient, smap


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------- store side


def default_workers() -> int:
    """Processes for filling: every core, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


def cache_for_store(
    store: Any, scale: int = 1, threshold: float = THRESHOLD, root: str | Path | None = None
) -> SaliencyCache:
    """The cache for ``store``'s source, side, ``scale`` and ``threshold`` (created if needed)."""
    return SaliencyCache(
        default_folder(store.source, store.side, scale, threshold, root),
        store.side,
        scale,
        threshold,
    )


def fill_store(
    store: Any,
    scale: int = 1,
    workers: int | None = None,
    progress: bool = True,
    threshold: float = THRESHOLD,
    root: str | Path | None = None,
) -> tuple[SaliencyCache, np.ndarray]:
    """Fill the cache for every image of ``store`` (misses only); return it and the row of
    each store image (``rows[i]`` holds ``store.images[i]``)."""
    cache = cache_for_store(store, scale, threshold, root)
    cache.fill(store.images, store.hashes, workers or default_workers(), progress)
    rows = cache.rows(store.hashes)
    if (rows < 0).any():  # cannot happen unless the folder was changed under us
        raise SslsegError(f"{cache.folder}: {(rows < 0).sum()} store images still missing")
    return cache, rows


# ---------------------------------------------------------------------- command


def add_cache_arguments(parser: argparse.ArgumentParser) -> None:
    """The store options of ``sslseg saliency --cache`` (``--scale``/``--workers`` are shared)."""
    parser.add_argument(
        "--cache",
        action="store_true",
        help="fill the hashed saliency cache of a store ahead of pretraining (the images SSL "
        "sees: --source/--root/--side) instead of writing PNGs for a folder",
    )
    parser.add_argument("--source", default=None, help="with --cache: data source name")
    parser.add_argument("--root", default=None, help="with --cache: folder of the source")
    parser.add_argument("--side", type=int, default=64, help="with --cache: store side (64)")
    parser.add_argument("--resize", default="squash", help="with --cache: store resize rule")
    parser.add_argument(
        "--cache-root",
        default=None,
        help="with --cache: folder of saliency caches (default $SSLSEG_CACHE/saliency)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the stand-alone filler (``python -m sslseg.saliency.cache``)."""
    add_cache_arguments(parser)
    parser.add_argument(
        "--scale",
        type=int,
        default=1,
        choices=SCALES,
        help="1: saliency at the store side (100p); 2: on the x2 upscale (200p)",
    )
    parser.add_argument("--workers", type=int, default=None, help="processes (default: cores)")


def run(args: argparse.Namespace) -> int:
    """Fill the cache of one store ahead of training and print what it holds."""
    from sslseg.data.store import open_store

    if not args.source:
        raise SslsegError("--source: needed with --cache (e.g. --source cats-vs-dogs)")
    if args.workers is not None and args.workers < 1:
        raise SslsegError(f"--workers: must be >= 1, got {args.workers}")
    progress = not getattr(args, "quiet", False)
    store = open_store(
        args.source, args.root, side=args.side, resize=args.resize, progress=progress
    )
    t0 = time.perf_counter()
    cache = cache_for_store(store, args.scale, root=args.cache_root)
    before = len(cache)
    added = cache.fill(
        store.images, store.hashes, args.workers or default_workers(), progress=progress
    )
    seconds = time.perf_counter() - t0
    rate = f", {added / seconds:.1f} img/s" if added else ""
    print(
        f"{cache.folder}: {len(cache)} entries ({before} before, {added} added in "
        f"{seconds:.1f} s{rate}); {len(store)} store images all cached"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m sslseg.saliency.cache --source ... --side ...``."""
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m sslseg.saliency.cache", description="fill the saliency cache of a store"
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except SslsegError as exc:
        print(f"sslseg: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
