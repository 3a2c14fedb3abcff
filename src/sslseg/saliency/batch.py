"""Whole-image pipeline (HC, RC, SaliencyCut, region image) and parallel batch processing.

:func:`analyse` is the unit the study's "SGD" augmentation needs per image; :func:`map_images`
runs any per-image function over a list of arrays or files on a process pool with a tqdm bar.
No cache lives here (content hashing belongs to the caller).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import cv2
import numpy as np
from tqdm import tqdm

from sslseg.errors import SslsegError
from sslseg.saliency._image import as_rgb
from sslseg.saliency.cut import THRESHOLD, saliency_cut
from sslseg.saliency.hc import hc
from sslseg.saliency.rc import rc
from sslseg.saliency.regions import mean_colours, split_by_mask

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
SCALES = (1, 2)  # the study's 100p (original) and 200p (x2 upscaled)

T = TypeVar("T")


class SaliencyResult(NamedTuple):
    """Everything :func:`analyse` computes for one image (at the processed scale).

    hc, rc: HxW float32 maps in [0, 1]. mask: HxW bool SaliencyCut mask of the RC map.
    labels: HxW int32 segmentation image -- the RC regions, split along the mask so that each
    label is wholly object or wholly background. palette: Kx3 uint8 mean RGB of each label
    (``palette[labels]`` is the flat-painted region image; recolouring is a palette swap).
    salient: (K,) bool, True for the labels that make up the salient object.
    """

    hc: np.ndarray
    rc: np.ndarray
    mask: np.ndarray
    labels: np.ndarray
    palette: np.ndarray
    salient: np.ndarray

    def region_image(self) -> np.ndarray:
        """HxWx3 uint8 segmentation image, each region painted with its palette colour."""
        return self.palette[self.labels]


def rescale(rgb: np.ndarray, scale: int) -> np.ndarray:
    """Original (scale 1) or x2 bicubic upscale (scale 2), the study's 100p / 200p."""
    if scale not in SCALES:
        raise SslsegError(f"scale: {scale} is not one of {SCALES}")
    if scale == 1:
        return rgb
    h, w = rgb.shape[:2]
    return cv2.resize(rgb, (w * scale, h * scale), interpolation=cv2.INTER_CUBIC)


def analyse(rgb: np.ndarray, scale: int = 1, threshold: float = THRESHOLD) -> SaliencyResult:
    """HC and RC maps, the SaliencyCut mask of the RC map and the segmentation image."""
    rgb = rescale(as_rgb(rgb), scale)
    sal_hc = hc(rgb)
    res = rc(rgb)
    mask = saliency_cut(rgb, res.saliency, threshold=threshold)
    labels, salient = split_by_mask(res.labels, mask)
    palette = mean_colours(rgb, labels, salient.shape[0])
    return SaliencyResult(sal_hc, res.saliency, mask, labels, palette, salient)


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 HxWx3 RGB; SslsegError naming the file if it is not one."""
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise SslsegError(f"{path}: cannot read ({exc.strerror or exc})") from None
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise SslsegError(f"{path}: not a readable image")
    return np.ascontiguousarray(img[:, :, ::-1])


def list_images(folder: str | Path) -> list[Path]:
    """Image files (by suffix) directly inside ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SslsegError(f"{folder}: not a folder")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _init_worker() -> None:
    # one thread per process: the pool supplies the parallelism
    cv2.setNumThreads(1)
    os.environ["OMP_NUM_THREADS"] = "1"


def map_images(
    fn: Callable[[Any], T],
    items: Sequence[Any],
    workers: int = 1,
    desc: str = "saliency",
    progress: bool = True,
) -> Iterator[T]:
    """Apply ``fn`` to every item (image array or path) in order, over ``workers`` processes.

    ``fn`` must be picklable (a module-level function or ``functools.partial`` of one). Results
    are yielded in input order as they complete; a SslsegError in a worker is re-raised here.
    """
    if workers < 1:
        raise SslsegError(f"workers: must be >= 1, got {workers}")
    bar = tqdm(total=len(items), desc=desc, unit="img", disable=not progress)
    try:
        if workers == 1 or len(items) <= 1:
            for item in items:
                yield fn(item)
                bar.update(1)
            return
        chunk = max(1, min(16, len(items) // (workers * 4)))
        # forkserver, not fork: forking a parent that already runs OpenCV / BLAS / tqdm threads
        # can deadlock a child on a lock held by a thread that was not copied.
        ctx = multiprocessing.get_context("forkserver")
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker) as pool:
            for out in pool.map(fn, items, chunksize=chunk):
                yield out
                bar.update(1)
    finally:
        bar.close()


def analyse_images(
    images: Sequence[np.ndarray | str | Path],
    scale: int = 1,
    workers: int = 1,
    progress: bool = True,
) -> list[SaliencyResult]:
    """:func:`analyse` for a list of arrays and/or image paths, in parallel."""
    from functools import partial

    return list(map_images(partial(_analyse_any, scale=scale), images, workers, progress=progress))


def _analyse_any(item: np.ndarray | str | Path, scale: int) -> SaliencyResult:
    rgb = item if isinstance(item, np.ndarray) else read_rgb(item)
    return analyse(rgb, scale=scale)


def write_outputs(result: SaliencyResult, out_dir: Path, stem: str) -> None:
    """Write maps/<stem>.png (RC), hc/<stem>.png, masks/<stem>.png (0/255), regions/<stem>.png."""
    for sub, arr in (
        ("maps", np.round(result.rc * 255).astype(np.uint8)),
        ("hc", np.round(result.hc * 255).astype(np.uint8)),
        ("masks", result.mask.astype(np.uint8) * 255),
        ("regions", np.ascontiguousarray(result.region_image()[:, :, ::-1])),
    ):
        path = out_dir / sub / f"{stem}.png"
        if not cv2.imwrite(str(path), arr):
            raise SslsegError(f"{path}: could not write")


def process_file(path: Path, out_dir: Path, scale: int) -> str:
    """Read one image, analyse it and write its outputs; returns the file name."""
    write_outputs(analyse(read_rgb(path), scale=scale), out_dir, path.stem)
    return path.name


def process_folder(
    in_dir: str | Path, out_dir: str | Path, scale: int = 1, workers: int = 1, progress: bool = True
) -> int:
    """Process every image in ``in_dir`` into ``out_dir/{maps,hc,masks,regions}``; returns count."""
    from functools import partial

    paths = list_images(in_dir)
    if not paths:
        raise SslsegError(f"{in_dir}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    if scale not in SCALES:
        raise SslsegError(f"scale: {scale} is not one of {SCALES}")
    out_dir = Path(out_dir)
    for sub in ("maps", "hc", "masks", "regions"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    fn = partial(process_file, out_dir=out_dir, scale=scale)
    return sum(1 for _ in map_images(fn, paths, workers, progress=progress))
