"""Seconds per image for HC, RC and SaliencyCut on one core.

    python benchmarks/saliency_speed.py --images ../shared/data/oxford-iiit-pet-original/images

One core: OMP_NUM_THREADS=1 (set before NumPy loads) and ``cv2.setNumThreads(1)``; Numba code
is single-threaded and compiled (or loaded from its cache) on a warm-up image first. Each image
is timed ``--repeats`` times and its fastest run kept. Times are CPU seconds of this
(single-threaded) process, ``time.process_time``, so that other processes on a shared machine
do not inflate them; ``--clock wall`` uses ``time.perf_counter`` instead. The figures are
medians over images.

* hc_s: image -> HC map;
* rc_s: image -> RC map + region labels + palette;
* saliencycut_s: image -> SaliencyCut mask, i.e. RC plus the cut (``cut_only_s`` is printed on
  the line before).
The last line is ``hc_s=... rc_s=... saliencycut_s=... images=...``.
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from sslseg.errors import SslsegError  # noqa: E402
from sslseg.saliency.batch import list_images, read_rgb  # noqa: E402
from sslseg.saliency.cut import saliency_cut  # noqa: E402
from sslseg.saliency.hc import hc  # noqa: E402
from sslseg.saliency.rc import rc  # noqa: E402

CLOCK = time.process_time


def best_of(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t = CLOCK()
        out = fn()
        best = min(best, CLOCK() - t)
    return best, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--images", default="../shared/data/oxford-iiit-pet-original/images")
    ap.add_argument("--limit", type=int, default=0, help="time only the first N images")
    ap.add_argument("--repeats", type=int, default=3, help="runs per image; the fastest counts")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    args = ap.parse_args(argv)
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    cv2.setNumThreads(1)
    try:
        paths = list_images(args.images)
        if args.limit:
            paths = paths[: args.limit]
        if not paths:
            raise SslsegError(f"{args.images}: no images")
        images = [read_rgb(p) for p in paths]
    except SslsegError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    saliency_cut(images[0], rc(images[0]).saliency)
    hc(images[0])
    print(f"warm-up (Numba compile or cache load): {time.perf_counter() - t0:.2f} s")
    t_hc, t_rc, t_cut = [], [], []
    for rgb in images:
        t_hc.append(best_of(lambda rgb=rgb: hc(rgb), args.repeats)[0])
        t, res = best_of(lambda rgb=rgb: rc(rgb), args.repeats)
        t_rc.append(t)
        sal = res.saliency
        t_cut.append(best_of(lambda rgb=rgb, sal=sal: saliency_cut(rgb, sal), args.repeats)[0])
    t_total = np.add(t_rc, t_cut)
    sizes = np.array([im.shape[0] * im.shape[1] for im in images])
    print(
        f"clock={args.clock} median image: {np.median(sizes) / 1e3:.0f} kpx; "
        f"cv2 threads={cv2.getNumThreads()}; load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"p90: hc_s={np.percentile(t_hc, 90):.4f} rc_s={np.percentile(t_rc, 90):.4f} "
        f"saliencycut_s={np.percentile(t_total, 90):.4f}"
    )
    print(f"cut_only_s={np.median(t_cut):.4f}")
    print(
        f"hc_s={np.median(t_hc):.4f} rc_s={np.median(t_rc):.4f} "
        f"saliencycut_s={np.median(t_total):.4f} images={len(images)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
