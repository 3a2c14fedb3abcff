"""Ablations and the speed-quality curve of SaliencyCut over its working resolution.

    python benchmarks/saliency_curve.py --images ../shared/data/oxford-iiit-pet-original/images \\
        --masks ../shared/data/oxford-iiit-pet-original/annotations/trimaps \\
        --variants curve --csv docs/results/saliency-curve.csv \\
        --figure docs/figures/saliency_curve.png

For every image the RC map is computed once per RC variant and each cut variant is run on it;
times are CPU seconds of this single-threaded process (``time.process_time``,
``OMP_NUM_THREADS=1``, ``cv2.setNumThreads(1)``), so other processes on a shared machine do
not inflate them. Masks are scored as in ``saliency_quality.py`` (same options). One line per
variant: ``variant mae f_measure cut_iou cut_f rc_s cut_s total_s`` (medians of seconds;
``f_measure`` is the RC map's adaptive F, ``cut_f`` the F-measure of the SaliencyCut mask).
With ``--variants curve`` a ``knee:`` line names the point chosen by :func:`knee`.
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import csv  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from saliency_quality import f_measure, load_mask, resize_pair  # noqa: E402
from sslseg.saliency.batch import list_images, read_rgb  # noqa: E402
from sslseg.saliency.cut import saliency_cut  # noqa: E402
from sslseg.saliency.rc import rc  # noqa: E402

#: name -> (rc keyword arguments, saliency_cut keyword arguments)
VARIANTS: dict[str, dict[str, tuple[dict, dict]]] = {
    "ablation": {
        "default": ({}, {}),
        "rc_cvpr_min50": ({"tpami": False, "seg_min_size": 50}, {}),
        "rc_tpami_min50": ({"seg_min_size": 50}, {}),
        "rc_cvpr_min200": ({"tpami": False}, {}),
        "cut_8iter": ({}, {"grabcut_iters": 8}),
        "cut_no_largest": ({}, {"largest": False}),
        "cut_no_border": ({}, {"border": 0.0}),
        "cut_init_cmcode": ({}, {"init": "cmcode"}),
        "cut_old": ({}, {"grabcut_iters": 1, "largest": False, "border": 0.0, "radius": -1}),
    },
    "curve": {
        f"side{s}": ({}, {"work_side": s})
        for s in (96, 128, 160, 192, 224, 256, 320, 384, 448, 512)
    },
}
#: the speed target of issue 17 (RC + SaliencyCut per Pet original, one core)
TARGET_S = 0.15
#: knee rule: the fastest working side whose IoU is within this of the best IoU on the curve
KNEE_IOU_TOL = 0.005


def knee(out: list[dict], tol: float = KNEE_IOU_TOL, target_s: float = TARGET_S) -> dict | None:
    """The knee of the curve: among points within ``target_s``, the fastest whose cut IoU is
    within ``tol`` of the best IoU of those points (beyond it, more pixels buy < ``tol``)."""
    ok = [o for o in out if o["total_s"] <= target_s]
    if not ok:
        return None
    best = max(o["cut_iou"] for o in ok)
    return min((o for o in ok if o["cut_iou"] >= best - tol), key=lambda o: o["total_s"])


def plot_curve(out: list[dict], best: dict | None, n: int, path: Path) -> None:
    """Two panels over the points: cut IoU and cut F-measure against RC + cut seconds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    xs = [o["total_s"] for o in out]
    for ax, key, label in zip(
        axes, ("cut_iou", "cut_f"), ("mean SaliencyCut IoU", "SaliencyCut F-measure (b2 = 0.3)")
    ):
        ax.plot(xs, [o[key] for o in out], "o-")
        for o in out:
            ax.annotate(o["variant"].removeprefix("side"), (o["total_s"], o[key]), fontsize=8)
        if best is not None:
            ax.plot([best["total_s"]], [best[key]], "r*", ms=14, label=f"knee: {best['variant']}")
            ax.legend(loc="lower right")
        ax.axvline(TARGET_S, color="grey", ls="--", lw=1)
        ax.set_xlabel("RC + SaliencyCut, median CPU s per image (one thread)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    fig.suptitle(f"SaliencyCut working side (longer side, px); {n} images; dashed: {TARGET_S} s")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"figure: {path}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--images", required=True)
    ap.add_argument("--masks", required=True)
    ap.add_argument("--trimap-border", choices=("ignore", "fg", "bg"), default="ignore")
    ap.add_argument("--mask-values", choices=("auto", "nonzero"), default="auto")
    ap.add_argument("--exclude", help="skip images whose stem is an image stem in this folder")
    ap.add_argument("--resize", type=int, default=0)
    ap.add_argument("--variants", choices=sorted(VARIANTS), default="ablation")
    ap.add_argument("--only", nargs="*", help="run only these variant names")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--csv", type=Path)
    ap.add_argument("--figure", type=Path)
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    masks = {p.stem: p for p in list_images(args.masks)}
    pairs = [(p, masks[p.stem]) for p in list_images(args.images) if p.stem in masks]
    if args.exclude:
        skip = {p.stem for p in list_images(args.exclude)}
        pairs = [pr for pr in pairs if pr[0].stem not in skip]
    if args.limit:
        pairs = pairs[: args.limit]
    variants = VARIANTS[args.variants]
    if args.only:
        variants = {k: v for k, v in variants.items() if k in args.only}
    rows: dict[str, list[dict[str, float]]] = {k: [] for k in variants}
    warm = read_rgb(pairs[0][0])
    saliency_cut(warm, rc(warm).saliency)  # Numba compile / cache load outside the timing
    for img_path, mask_path in pairs:
        rgb = read_rgb(img_path)
        fg, valid = load_mask(mask_path, args.trimap_border, args.mask_values)
        if args.resize:
            rgb, fg, valid = resize_pair(rgb, fg, valid, args.resize)
        g = fg[valid]
        rc_cache: dict[str, tuple[object, float]] = {}
        for name, (rc_kw, cut_kw) in variants.items():
            key = repr(sorted(rc_kw.items()))
            if key not in rc_cache:
                t = time.process_time()
                res = rc(rgb, **rc_kw)
                rc_cache[key] = (res, time.process_time() - t)
            res, t_rc = rc_cache[key]
            kw = dict(cut_kw)
            if kw.get("radius") == -1:  # the former default: 2 % of the working side
                side = kw.get("work_side", 224)
                kw["radius"] = max(2, round(0.02 * min(side, max(rgb.shape[:2]))))
            t = time.process_time()
            cut = saliency_cut(rgb, res.saliency, **kw)
            t_cut = time.process_time() - t
            s = res.saliency[valid]
            b = s >= min(2.0 * float(s.mean()), 1.0)
            tp = float(np.count_nonzero(b & g))
            c = cut[valid]
            tp_c = float(np.count_nonzero(c & g))
            rows[name].append(
                {
                    "mae": float(np.abs(s - g).mean()),
                    "p": tp / max(np.count_nonzero(b), 1),
                    "r": tp / max(np.count_nonzero(g), 1),
                    "iou": tp_c / max(np.count_nonzero(c | g), 1),
                    "cp": tp_c / max(np.count_nonzero(c), 1),
                    "cr": tp_c / max(np.count_nonzero(g), 1),
                    "rc_s": t_rc,
                    "cut_s": t_cut,
                    "total_s": t_rc + t_cut,
                }
            )
    out = []
    for name, rs in rows.items():
        m = {k: float(np.mean([r[k] for r in rs])) for k in ("mae", "p", "r", "iou", "cp", "cr")}
        t = {k: float(np.median([r[k] for r in rs])) for k in ("rc_s", "cut_s", "total_s")}
        line = {
            "variant": name,
            "mae": round(m["mae"], 4),
            "f_measure": round(f_measure(m["p"], m["r"]), 4),
            "cut_iou": round(m["iou"], 4),
            "cut_f": round(f_measure(m["cp"], m["cr"]), 4),
            **{k: round(v, 4) for k, v in t.items()},
            "images": len(rs),
        }
        out.append(line)
        print(" ".join(f"{k}={v}" for k, v in line.items()), flush=True)
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with args.csv.open("w", newline="") as fh:
            wr = csv.DictWriter(fh, fieldnames=list(out[0]))
            wr.writeheader()
            wr.writerows(out)
    best = knee(out) if args.variants == "curve" else None
    if best is not None:
        print(
            f"knee: {best['variant']} (fastest point within {KNEE_IOU_TOL} cut IoU of the best "
            f"point under {TARGET_S} s) total_s={best['total_s']} cut_iou={best['cut_iou']}"
        )
    if args.figure:
        plot_curve(out, best, len(pairs), args.figure)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
