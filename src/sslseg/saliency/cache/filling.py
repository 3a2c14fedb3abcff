"""Filling the saliency cache: source image -> working copy -> analysis -> rows, in parallel.

An entry is computed from the **source** image, not from the small store image the key is
made from: saliency at the store's 64-128 px is much worse than at the original size (the cut's
5-px rings and RC's 200-px minimum region are sized for originals; docs/saliency.md,
docs/results/saliency-cache-resolution.txt). Per image:

1. :func:`working_image`: the source, centre-cropped to a square first when the store's rule
   is ``center-crop``, resized (INTER_AREA) so that its longer side is at most
   ``source_side`` (:data:`~sslseg.saliency.cache.format.SOURCE_SIDE`, 256) but at least the
   row side ``side * scale`` (a smaller source is enlarged, bicubic: the study's 200p);
2. :func:`analyse_seeded` on that copy (HC, RC, SaliencyCut, RC regions split by the mask);
3. :func:`shrink` to the ``H x W`` rows: labels by nearest neighbour at pixel centres
   (``INTER_NEAREST_EXACT``, so every row label is still wholly object or background; labels
   that vanish are dropped and the rest renumbered), the palette as the mean colours of the
   resized copy under the resized labels, the RC map by area averaging.

When the copy already has the row size (a store image filled as its own source at scale 1)
steps 1 and 3 change nothing, so the entry is exactly ``analyse_seeded`` of the image.

Filling runs the misses on a fork-server process pool (:func:`fill`): the parent reads each
source image, checks that it still decodes to the store image of its key (the store's own
resize rule, :func:`sslseg.data.store.resize_image`), makes the working copy and keeps a few
per worker in flight; workers analyse and shrink. Work is committed every
:data:`COMMIT_EVERY` rows.
"""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.context
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
from tqdm import tqdm

from sslseg.data.store import crop_to_rule
from sslseg.errors import SslsegError
from sslseg.saliency.batch import SaliencyResult, _init_worker, analyse
from sslseg.saliency.cache.format import SOURCE_SIDE, SaliencyCache, default_folder
from sslseg.saliency.cut import THRESHOLD
from sslseg.saliency.regions import mean_colours

#: rows computed between two commits: a kill loses at most this much work
COMMIT_EVERY = 256
#: images prepared ahead per worker (bounds the parent's memory for large sources)
AHEAD_PER_WORKER = 2

T = TypeVar("T")
R = TypeVar("R")


def analyse_seeded(rgb: np.ndarray, scale: int = 1, threshold: float = THRESHOLD) -> Any:
    """:func:`analyse` with OpenCV's RNG re-seeded first.

    GrabCut initialises its colour GMMs with k-means on ``cv::theRNG()``, so without this the
    mask (and the labels split along it) would depend on what the process analysed before;
    seeding makes every entry a function of the pixels alone, whichever worker computed it.
    """
    cv2.setRNGSeed(0)
    return analyse(rgb, scale=scale, threshold=threshold)


def working_image(
    source: np.ndarray, rows: int, rule: str = "squash", source_side: int = SOURCE_SIDE
) -> np.ndarray:
    """The copy of ``source`` saliency is computed on (module docstring, step 1)."""
    img = crop_to_rule(np.asarray(source), rule)
    h, w = img.shape[:2]
    longest = max(h, w)
    target = max(min(longest, source_side), rows)
    if target == longest:
        return np.ascontiguousarray(img)
    f = target / longest
    size = (max(1, round(w * f)), max(1, round(h * f)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC)


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    # area averaging on a shrinking axis, bilinear on a growing one (one axis at a time when
    # they differ, as the store does)
    h, w = image.shape[:2]
    fx = cv2.INTER_AREA if size[0] <= w else cv2.INTER_LINEAR
    fy = cv2.INTER_AREA if size[1] <= h else cv2.INTER_LINEAR
    if fx == fy:
        return cv2.resize(image, size, interpolation=fx)
    half = cv2.resize(image, (size[0], h), interpolation=fx)
    return cv2.resize(half, size, interpolation=fy)


def shrink(
    res: SaliencyResult, rgb: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(labels, palette, salient, map_u8)`` of ``res`` (computed on ``rgb``) at ``size``.

    ``size`` is ``(width, height)``; module docstring, step 3. Labels are uint8 when there
    are at most 256, else uint16.
    """
    h, w = res.labels.shape
    if (w, h) == tuple(size):
        labels, palette, salient, smap = res.labels, res.palette, res.salient, res.rc
    else:
        near = cv2.resize(res.labels.astype(np.int32), size, interpolation=cv2.INTER_NEAREST_EXACT)
        used, inverse = np.unique(near.ravel(), return_inverse=True)
        labels = inverse.reshape(near.shape)
        salient = res.salient[used]
        palette = mean_colours(_resize(rgb, size), labels, len(used))
        smap = _resize(res.rc, size)
    k = palette.shape[0]
    labels = labels.astype(np.uint8 if k <= 256 else np.uint16)
    return labels, palette, salient, np.clip(np.round(smap * 255), 0, 255).astype(np.uint8)


def _analyse_row(work: np.ndarray, rows: int, threshold: float) -> tuple[np.ndarray, ...]:
    # in the worker: the compact result for the trip back
    return shrink(analyse_seeded(work, 1, threshold), work, (rows, rows))


def entry_from_source(
    source: np.ndarray,
    rows: int,
    resize: str = "squash",
    threshold: float = THRESHOLD,
    source_side: int = SOURCE_SIDE,
) -> tuple[np.ndarray, ...]:
    """What the cache stores for one image, from its source image (module docstring, steps
    1-3): ``(labels, palette, salient, map_u8)`` at ``rows x rows``; the online saliency view
    computes these at every step instead."""
    return _analyse_row(working_image(source, rows, resize, source_side), rows, threshold)


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` saliency processes (fork server, OpenCV single-threaded)."""
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=_pool_context(), initializer=_init_worker
    )


def _pool_context() -> multiprocessing.context.BaseContext:
    # Not "fork": a parent that has run OpenMP/OpenCV thread pools (torch, cv2) can leave a
    # lock held in the child, which then hangs. A fork server starts clean, imports this
    # module once (Numba kernels load from their disk cache) and forks workers from there.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    return ctx


def _ordered_map(
    pool: Executor | None, fn: Callable[[T], R], items: Iterable[T], ahead: int
) -> Iterator[R]:
    """``map(fn, items)`` in order, on ``pool`` with at most ``ahead`` items in flight."""
    if pool is None:
        yield from map(fn, items)
        return
    pending: deque = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def fill(
    cache: SaliencyCache,
    images: Sequence[np.ndarray] | np.ndarray,
    keys: Sequence[str] | None = None,
    workers: int = 1,
    progress: bool = True,
    on_commit: Callable[[int], None] | None = None,
    sources: Callable[[int], np.ndarray] | Sequence[np.ndarray] | None = None,
    resize: str = "squash",
) -> int:
    """Analyse every image whose key is not in ``cache`` yet and commit it; returns rows added.

    ``images``: ``N x S x S x 3`` uint8 (a store's memory map, say); ``keys``: their content
    hashes (computed when omitted). ``sources``: the source image of ``images[i]`` (a
    callable of ``i`` or a sequence), which must resize to ``images[i]`` under the store rule
    ``resize``; without it each image is its own source. Misses are analysed on ``workers``
    processes and committed every :data:`COMMIT_EVERY` rows; ``on_commit(rows_so_far)`` runs
    after each commit (tests raise from it to simulate a kill).
    """
    from sslseg.data.store import content_hash, resize_image

    if keys is None:
        keys = [content_hash(np.asarray(im)) for im in images]
    if len(keys) != len(images):
        raise SslsegError(f"saliency cache: {len(keys)} keys for {len(images)} images")
    cache.refresh()
    first: dict[str, int] = {}
    for i, key in enumerate(keys):
        if key not in cache and key not in first:
            first[key] = i
    todo = list(first.items())
    if not todo:
        return 0
    rows = cache.height

    def prepare(key: str, i: int) -> np.ndarray:
        if sources is None:
            return working_image(np.array(images[i]), rows, resize, cache.source_side)
        src = np.asarray(sources(i) if callable(sources) else sources[i])
        if content_hash(resize_image(src, cache.side, resize)) != key:
            raise SslsegError(
                f"saliency cache: the source of image {i} no longer resizes to its store "
                "image (the source changed since the store was built; rebuild the store)"
            )
        return working_image(src, rows, resize, cache.source_side)

    fn = partial(_analyse_row, rows=rows, threshold=cache.threshold)
    workers = max(1, min(workers, len(todo)))
    added = 0
    bar = tqdm(
        total=len(todo),
        desc=f"saliency cache x{cache.scale}",
        unit="img",
        disable=not progress,
        dynamic_ncols=True,
    )
    pool = None
    try:
        if workers > 1:
            pool = process_pool(workers)
        for start in range(0, len(todo), COMMIT_EVERY):
            span = min(COMMIT_EVERY, len(todo) - start)
            chunk = [
                (k, i) for k, i in todo[start : start + span] if k not in cache
            ]  # another process may have added some
            bar.update(span - len(chunk))
            if not chunk:
                continue
            results = []
            work = (prepare(k, i) for k, i in chunk)
            for res in _ordered_map(pool, fn, work, AHEAD_PER_WORKER * workers + 1):
                results.append(res)
                bar.update(1)
            added += cache.add([k for k, _ in chunk], results)
            if on_commit is not None:
                on_commit(added)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        bar.close()
    return added


# ---------------------------------------------------------------------- store side


def default_workers() -> int:
    """Processes for filling: every core, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


class StoreSources:
    """The source image of every row of a store, read through the store's recorded source.

    ``store.root / "index.json"`` names the source, its folder and options, and the resize
    rule; the source is opened on the first call (a fill with no misses never opens it).
    """

    def __init__(self, store: Any) -> None:
        self.store = store
        path = Path(store.root) / "index.json"
        try:
            self.index = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise SslsegError(
                f"saliency cache: {path}: cannot read the store index, which names the "
                f"source images entries are computed from ({exc})"
            ) from None
        self.resize = self.index.get("resize", "squash")
        self._source: Any = None
        self._items: dict[str, Any] = {}

    def _open(self) -> None:
        from sslseg.data.sources import make_source

        idx = self.index
        try:
            self._source = make_source(idx["source"], idx["root"], **idx.get("options", {}))
            self._items = {it.id: it for it in self._source.items()}
        except SslsegError as exc:
            raise SslsegError(
                f"saliency cache: entries are computed from the source images of "
                f"{self.store.root}: {exc}"
            ) from None

    def __call__(self, i: int) -> np.ndarray:
        if self._source is None:
            self._open()
        item_id = self.store.ids[i]
        if item_id not in self._items:
            raise SslsegError(
                f"saliency cache: {item_id}: no longer in {self.index['root']} (the source "
                "changed since the store was built; rebuild the store)"
            )
        return self._source.read_image(self._items[item_id])


def cache_for_store(
    store: Any,
    scale: int = 1,
    threshold: float = THRESHOLD,
    root: str | Path | None = None,
    source_side: int = SOURCE_SIDE,
) -> SaliencyCache:
    """The cache for ``store``'s source, side, ``scale``, ``threshold`` (created if needed)."""
    return SaliencyCache(
        default_folder(store.source, store.side, scale, threshold, root, source_side),
        store.side,
        scale,
        threshold,
        source_side,
    )


def fill_store(
    store: Any,
    scale: int = 1,
    workers: int | None = None,
    progress: bool = True,
    threshold: float = THRESHOLD,
    root: str | Path | None = None,
    source_side: int = SOURCE_SIDE,
) -> tuple[SaliencyCache, np.ndarray]:
    """Fill the cache for every image of ``store`` (misses only, computed from the source
    images); return it and the row of each store image (``rows[i]`` holds ``store.images[i]``).
    """
    cache = cache_for_store(store, scale, threshold, root, source_side)
    if (cache.rows(store.hashes) < 0).any():  # the source is only opened for misses
        sources = StoreSources(store)
        cache.fill(
            store.images,
            store.hashes,
            workers or default_workers(),
            progress,
            sources=sources,
            resize=sources.resize,
        )
    rows = cache.rows(store.hashes)
    if (rows < 0).any():  # cannot happen unless the folder was changed under us
        raise SslsegError(f"{cache.folder}: {(rows < 0).sum()} store images still missing")
    return cache, rows
