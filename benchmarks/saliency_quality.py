"""Quality of HC / RC maps and SaliencyCut masks against ground-truth foreground masks.

    python benchmarks/saliency_quality.py \
        --images ../shared/data/oxford-iiit-pet-original/images \
        --masks ../shared/data/oxford-iiit-pet-original/annotations/trimaps

Masks are matched to images by file stem and are either binary (0 / 255, foreground > 127) or
Oxford-IIIT Pet trimaps (1 = pet, 2 = background, 3 = border); ``--trimap-border`` says what the
border band counts as (default: excluded from every score, since it is the annotators'
"unsure" band). ``--mask-values nonzero`` reads any non-zero pixel as foreground (MultiRes-PV
PV01 masks are category-coded 211 / 213).

Held-out sets: ``--exclude DIR`` drops every image whose stem is also an image stem in DIR, e.g.
the 448 resized Pet images not among the 150 originals:

    python benchmarks/saliency_quality.py \
        --images ../shared/data/oxford-iiit-pet/images \
        --masks ../shared/data/oxford-iiit-pet/annotations/trimaps \
        --exclude ../shared/data/oxford-iiit-pet-original/images
    python benchmarks/saliency_quality.py --mask-values nonzero \
        --images ../shared/data/multires-pv/pv01-original/images \
        --masks ../shared/data/multires-pv/pv01-original/masks

``--resize N`` scores at the resolution the saliency cache stores: the image is resized
(INTER_AREA) so its longer side is N before saliency, and the mask (nearest neighbour) to the
same size. With ``--from-source S`` as well, saliency is computed the way the cache computes
an entry (cache version 2): on the image with its longer side capped at S
(:func:`sslseg.saliency.cache.filling.working_image`), then resized to N
(:func:`~sslseg.saliency.cache.filling.shrink`: labels nearest, RC map area-averaged and
stored as uint8, mask = the salient labels); the reported CPU time is then the whole entry
(``analyse``: HC, RC, cut, region split, resize).

Scores (Cheng et al. TPAMI 2015, Sec. 6; Achanta et al. CVPR 2009):
* mae: mean absolute error between the RC map in [0, 1] and the 0/1 mask, averaged over images;
* f_measure: RC map binarised at the adaptive threshold 2 x mean saliency (capped at 1);
  precision and recall are averaged over images and F = (1 + b2) P R / (b2 P + R), b2 = 0.3;
* cut_iou: intersection-over-union of the SaliencyCut mask (from the RC map), averaged.
The last line is ``mae=... f_measure=... cut_iou=... images=...``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from functools import partial
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from sslseg.errors import SslsegError  # noqa: E402
from sslseg.saliency.batch import list_images, map_images, read_rgb  # noqa: E402
from sslseg.saliency.cache.filling import analyse_seeded, shrink, working_image  # noqa: E402
from sslseg.saliency.cut import saliency_cut  # noqa: E402
from sslseg.saliency.hc import hc  # noqa: E402
from sslseg.saliency.rc import rc  # noqa: E402

BETA2 = 0.3


def load_mask(path: Path, border: str, values: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """(foreground bool, valid bool) from a binary mask, a category-coded mask or a trimap."""
    m = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if m is None:
        raise SslsegError(f"{path}: not a readable mask")
    if values == "nonzero":
        return m > 0, np.ones(m.shape, bool)
    if m.max() <= 3 and np.isin(m, (1, 2, 3)).all():
        fg = m == 1
        valid = np.ones_like(fg)
        if border == "ignore":
            valid = m != 3
        elif border == "fg":
            fg = m != 2
        return fg, valid
    return m > 127, np.ones(m.shape, bool)


def resize_pair(
    rgb: np.ndarray, fg: np.ndarray, valid: np.ndarray, side: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image (INTER_AREA) and mask (nearest) resized so the longer side is ``side``."""
    h, w = rgb.shape[:2]
    f = side / max(h, w)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    interp = cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC
    small = cv2.resize(rgb, size, interpolation=interp)
    near = cv2.INTER_NEAREST
    fg = cv2.resize(fg.astype(np.uint8), size, interpolation=near).astype(bool)
    valid = cv2.resize(valid.astype(np.uint8), size, interpolation=near).astype(bool)
    return small, fg, valid


def score_one(
    pair: tuple[Path, Path],
    border: str,
    values: str = "auto",
    resize: int = 0,
    cut_kwargs: dict | None = None,
    from_source: int = 0,
) -> dict[str, float]:
    """Scores of one image; ``time_s`` is the CPU time of RC + SaliencyCut (process_time)."""
    img_path, mask_path = pair
    rgb = read_rgb(img_path)
    fg, valid = load_mask(mask_path, border, values)
    if fg.shape != rgb.shape[:2]:
        raise SslsegError(f"{mask_path}: size {fg.shape} differs from {img_path} {rgb.shape[:2]}")
    if resize and from_source:
        small, fg, valid = resize_pair(rgb, fg, valid, resize)
        h, w = small.shape[:2]
        work = working_image(rgb, max(h, w), "squash", from_source)
        t = time.process_time()
        full = analyse_seeded(work)
        labels, _, salient, smap = shrink(full, work, (w, h))
        out: dict[str, float] = {"time_s": time.process_time() - t}
        sal_rc, cut = smap.astype(np.float32) / 255, salient[labels]
        sal_hc = cv2.resize(full.hc, (w, h), interpolation=cv2.INTER_AREA)
    else:
        if resize:
            rgb, fg, valid = resize_pair(rgb, fg, valid, resize)
        sal_hc = hc(rgb)
        t = time.process_time()
        res = rc(rgb)
        cut = saliency_cut(rgb, res.saliency, **(cut_kwargs or {}))
        out = {"time_s": time.process_time() - t}
        sal_rc = res.saliency
    g = fg[valid]
    for name, sal in (("rc", sal_rc), ("hc", sal_hc)):
        s = sal[valid]
        out[f"{name}_mae"] = float(np.abs(s - g).mean())
        b = s >= min(2.0 * float(s.mean()), 1.0)
        tp = float(np.count_nonzero(b & g))
        out[f"{name}_p"] = tp / max(np.count_nonzero(b), 1)
        out[f"{name}_r"] = tp / max(np.count_nonzero(g), 1)
    c = cut[valid]
    out["cut_iou"] = float(np.count_nonzero(c & g)) / max(np.count_nonzero(c | g), 1)
    return out


def save_strip(pairs: list[tuple[Path, Path]], path: Path, count: int) -> None:
    """PNG strip of image / HC / RC / SaliencyCut / region image for ``count`` spaced images."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sslseg.saliency.batch import analyse

    picks = [pairs[i] for i in np.linspace(0, len(pairs) - 1, count).round().astype(int)]
    titles = ("image", "HC", "RC", "SaliencyCut (RC)", "region image")
    fig, axes = plt.subplots(count, 5, figsize=(15, 2.6 * count), squeeze=False)
    for row, (img_path, _) in zip(axes, picks, strict=True):
        rgb = read_rgb(img_path)
        res = analyse(rgb)
        for ax, title, arr in zip(
            row, titles, (rgb, res.hc, res.rc, res.mask, res.region_image()), strict=True
        ):
            ax.imshow(arr, cmap="gray", vmin=0, vmax=1) if arr.ndim == 2 else ax.imshow(arr)
            ax.set_xticks([])
            ax.set_yticks([])
            if row is axes[0]:
                ax.set_title(title)
        row[0].set_ylabel(img_path.stem, fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    print(f"figure: {path}")


def f_measure(p: float, r: float) -> float:
    return (1 + BETA2) * p * r / (BETA2 * p + r) if p + r > 0 else 0.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--images", default="../shared/data/oxford-iiit-pet-original/images")
    ap.add_argument(
        "--masks", default="../shared/data/oxford-iiit-pet-original/annotations/trimaps"
    )
    ap.add_argument("--trimap-border", choices=("ignore", "fg", "bg"), default="ignore")
    ap.add_argument(
        "--mask-values",
        choices=("auto", "nonzero"),
        default="auto",
        help="auto: trimap or binary (> 127); nonzero: any non-zero pixel is foreground",
    )
    ap.add_argument(
        "--exclude", help="skip images whose stem is an image stem in this folder (held-out sets)"
    )
    ap.add_argument("--resize", type=int, default=0, help="longer side to score at (0: original)")
    ap.add_argument(
        "--from-source",
        type=int,
        default=0,
        metavar="S",
        help="with --resize: compute on the image capped at S px, then resize (the cache's way)",
    )
    ap.add_argument("--limit", type=int, default=0, help="score only the first N images")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--figure", type=Path, help="also save an image/HC/RC/cut/regions strip PNG")
    ap.add_argument("--figure-count", type=int, default=4)
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)  # one thread, so that time_s is one core's CPU time
    try:
        masks = {p.stem: p for p in list_images(args.masks)}
        pairs = [(p, masks[p.stem]) for p in list_images(args.images) if p.stem in masks]
        if args.exclude:
            skip = {p.stem for p in list_images(args.exclude)}
            pairs = [pair for pair in pairs if pair[0].stem not in skip]
        if args.limit:
            pairs = pairs[: args.limit]
        if not pairs:
            raise SslsegError(f"{args.masks}: no mask matches an image stem in {args.images}")
        if args.figure:
            save_strip(pairs, args.figure, args.figure_count)
        if args.from_source and not args.resize:
            raise SslsegError("--from-source: needs --resize (the size the cache stores)")
        score = partial(
            score_one,
            border=args.trimap_border,
            values=args.mask_values,
            resize=args.resize,
            from_source=args.from_source,
        )
        rows = list(map_images(score, pairs, args.workers))
    except SslsegError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    t_rc_cut = [r["time_s"] for r in rows]
    for name in ("hc", "rc"):
        print(
            f"{name}: mae={mean[name + '_mae']:.4f} precision={mean[name + '_p']:.4f} "
            f"recall={mean[name + '_r']:.4f} "
            f"f_measure={f_measure(mean[name + '_p'], mean[name + '_r']):.4f}"
        )
    print(
        f"trimap_border={args.trimap_border} mask_values={args.mask_values} "
        f"resize={args.resize or 'original'}"
        + (f" from_source={args.from_source} entry" if args.from_source else " rc_cut")
        + f"_cpu_s_median={np.median(t_rc_cut):.4f}"
    )
    print(
        f"mae={mean['rc_mae']:.4f} f_measure={f_measure(mean['rc_p'], mean['rc_r']):.4f} "
        f"cut_iou={mean['cut_iou']:.4f} images={len(rows)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
