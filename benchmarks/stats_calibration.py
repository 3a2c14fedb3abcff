"""False-positive rate and power of the report's paired ΔIoU test, on simulated experiments.

    python benchmarks/stats_calibration.py                 # the report's test ("after")
    python benchmarks/stats_calibration.py --method old    # the hierarchical bootstrap ("before")

Each simulated experiment is what ``render_report`` compares: a model and a baseline trained
with the same seeds, each seed with its own split of ``--images`` (120) test images, as
per-image integer tp/fp/fn. Per seed and image: a foreground size (log-normal, median 600 px),
a difficulty shared by both models on that image (sd 0.1), and for each run a quality
``base + effect (model only) + seed shift + difficulty + image noise``, where the seed shift
(sd σ_seed) is shared by all images of that run and the image noise (sd σ_img) is not. The
quality is the image's IoU: precision = recall = 2q / (1 + q), tp = round(F·p),
fp = fn = round(F·(1 - p)).

* ``--method new``: ``sslseg.experiments.stats.paired_iou_difference`` on the per-image counts,
  the function ``render_report`` calls (paired t over seeds).
* ``--method old``: the hierarchical bootstrap it replaced (resample seeds, then test images;
  ``hierarchical_bootstrap_difference`` below is the removed function verbatim), computed for
  all experiments at once with the removed function's own draws (its default ``seed=0``), so
  each experiment gets exactly the interval the old report would have printed.

A false positive is a 95% interval excluding 0 when both models have the same expected quality.
For every σ_seed × σ_img mix one line ``sigma_seed=… sigma_img=… fpr_2=… …``; then the power
at ``--power-mix`` for a true quality gain ``--effect``; the last line is
``fpr_2=… fpr_3=… fpr_5=… fpr_10=… power_5=… effect=…`` with fpr_k the worst (largest) rate
over the mixes at k seeds and power_5 the power at 5 seeds; the line before it gives the rates
pooled over the mixes (the largest of 8 noisy rates sits above their mean). With
``--experiments`` E a rate of 0.05 has a binomial sd of about sqrt(0.05 · 0.95 / E), 0.005 at
2000. ``--one-seed`` adds fpr_1, the one-seed image bootstrap's rate, which is only 5% when
the training run adds no variance (σ_seed = 0).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from sslseg.experiments.stats import Interval, dataset_iou, paired_iou_difference

SEED_COUNTS = (2, 3, 5, 10)
SIGMA_SEED = (0.0, 0.02, 0.04, 0.08)
SIGMA_IMG = (0.02, 0.1)
BASE = 0.55
SIGMA_SHARED = 0.1
KEYS = ("tp", "fp", "fn")


def simulate(
    rng: np.random.Generator,
    n_experiments: int,
    n_seeds: int,
    sigma_seed: float,
    sigma_img: float,
    effect: float = 0.0,
    n_images: int = 120,
    base: float = BASE,
) -> tuple[np.ndarray, np.ndarray]:
    """(model, baseline) per-image counts, each ``experiments x seeds x images x 3`` (tp, fp, fn).

    The first k seeds of an experiment are an experiment with k seeds.
    """
    shape = (n_experiments, n_seeds, n_images)
    size = np.clip(np.round(rng.lognormal(np.log(600), 0.8, shape)), 20, 4096)
    shared = rng.normal(0, SIGMA_SHARED, shape)

    def run(shift: float) -> np.ndarray:
        seed_shift = rng.normal(0, sigma_seed, shape[:2])[..., None]
        q = np.clip(
            base + shift + seed_shift + shared + rng.normal(0, sigma_img, shape), 0.01, 0.99
        )
        p = 2 * q / (1 + q)
        tp = np.round(size * p)
        err = np.round(size * (1 - p))
        return np.stack([tp, err, err], axis=-1)

    return run(effect), run(0.0)


def new_method(model: np.ndarray, baseline: np.ndarray, level: float = 0.95) -> list[Interval]:
    """The report's comparison, one experiment at a time, from per-image count dicts."""
    out = []
    for m_exp, b_exp in zip(model, baseline, strict=True):
        runs = [
            [{k: counts[:, i] for i, k in enumerate(KEYS)} for counts in exp]
            for exp in (m_exp, b_exp)
        ]
        out.append(paired_iou_difference(*runs, level=level))
    return out


def hierarchical_bootstrap_difference(
    model: list[dict[str, np.ndarray]],
    baseline: list[dict[str, np.ndarray]],
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """The removed ``stats.paired_iou_difference`` (hierarchical bootstrap), verbatim.

    Anti-conservative with few seeds: kept only to measure that here. Do not use.
    """
    if len(model) != len(baseline) or not model:
        raise ValueError("need the same, non-zero number of seeds for both models")
    for m, b in zip(model, baseline, strict=True):
        if len(m["tp"]) != len(b["tp"]):
            raise ValueError("paired runs must share their test images")
    observed = np.mean(
        [
            dataset_iou(m["tp"], m["fp"], m["fn"]) - dataset_iou(b["tp"], b["fp"], b["fn"])
            for m, b in zip(model, baseline, strict=True)
        ]
    )
    rng = np.random.default_rng(seed)
    n_seeds = len(model)
    diffs = np.zeros(n_boot)
    seed_draws = rng.integers(0, n_seeds, size=(n_boot, n_seeds)) if n_seeds > 1 else None
    for s in range(n_seeds):
        m, b = model[s], baseline[s]
        n = len(m["tp"])
        idx = rng.integers(0, n, size=(n_boot, n))
        d = dataset_iou(m["tp"][idx], m["fp"][idx], m["fn"][idx]) - dataset_iou(
            b["tp"][idx], b["fp"][idx], b["fn"][idx]
        )
        # each replicate weights seed s by how often the seed draw picked it
        weight = (seed_draws == s).sum(1) if seed_draws is not None else np.ones(n_boot)
        diffs += weight * d
    diffs /= n_seeds
    alpha = (1 - level) / 2
    low, high = np.quantile(diffs, [alpha, 1 - alpha])
    return Interval(float(observed), float(low), float(high))


def old_method(
    model: np.ndarray,
    baseline: np.ndarray,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    chunk: int = 250,
) -> list[Interval]:
    """``hierarchical_bootstrap_difference(..., seed=seed)`` for every experiment at once.

    The old function draws the same resampling indices for any data of the same shape, so
    they are drawn once in its order and applied to all experiments as image weights
    (replicate totals = weights @ counts, exact in float32 for these integer counts).
    """
    n_exp, n_seeds, n_img, _ = model.shape
    rng = np.random.default_rng(seed)
    seed_draws = rng.integers(0, n_seeds, size=(n_boot, n_seeds)) if n_seeds > 1 else None
    weights = []
    for _ in range(n_seeds):
        idx = rng.integers(0, n_img, size=(n_boot, n_img))
        flat = (np.arange(n_boot)[:, None] * n_img + idx).ravel()
        weights.append(np.bincount(flat, minlength=n_boot * n_img).reshape(n_boot, n_img))
    counts = np.concatenate([model, baseline], axis=-1).astype(np.float32)  # E x S x N x 6
    observed = (_iou(model.sum(2)) - _iou(baseline.sum(2))).mean(1)
    alpha = (1 - level) / 2
    out = []
    for start in range(0, n_exp, chunk):
        part = counts[start : start + chunk]
        e = len(part)
        diffs = np.zeros((n_boot, e))
        for s in range(n_seeds):
            cols = part[:, s].transpose(1, 0, 2).reshape(n_img, e * 6)
            sums = (weights[s].astype(np.float32) @ cols).reshape(n_boot, e, 6).astype(np.float64)
            d = _iou(sums[..., :3]) - _iou(sums[..., 3:])
            weight = (seed_draws == s).sum(1) if seed_draws is not None else np.ones(n_boot)
            diffs += weight[:, None] * d
        diffs /= n_seeds
        low, high = np.quantile(diffs, [alpha, 1 - alpha], axis=0)
        out += [
            Interval(float(o), float(lo), float(hi))
            for o, lo, hi in zip(observed[start : start + e], low, high, strict=True)
        ]
    return out


def _iou(sums: np.ndarray) -> np.ndarray:
    """Dataset IoU from summed (tp, fp, fn) on the last axis."""
    return sums[..., 0] / np.maximum(sums[..., 0] + sums[..., 1] + sums[..., 2], 1)


def rejection_rates(
    method: str,
    rng: np.random.Generator,
    n_experiments: int,
    sigma_seed: float,
    sigma_img: float,
    effect: float = 0.0,
    seed_counts: tuple[int, ...] = SEED_COUNTS,
) -> dict[int, float]:
    """Share of experiments whose 95% interval excludes 0, at each number of seeds."""
    model, baseline = simulate(rng, n_experiments, max(seed_counts), sigma_seed, sigma_img, effect)
    compare = new_method if method == "new" else old_method
    rates = {}
    for k in seed_counts:
        intervals = compare(model[:, :k], baseline[:, :k])
        rates[k] = float(np.mean([i.excludes_zero() for i in intervals]))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--method", choices=("new", "old"), default="new")
    parser.add_argument("--effect", type=float, default=0.05, help="true quality gain for power")
    parser.add_argument(
        "--one-seed",
        action="store_true",
        help="also the one-seed image bootstrap's rate (fpr_1, on min(experiments, 500))",
    )
    parser.add_argument(
        "--power-mix", type=float, nargs=2, default=(0.02, 0.1), metavar=("SIGMA_SEED", "SIGMA_IMG")
    )
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    worst = dict.fromkeys(SEED_COUNTS, 0.0)
    pooled = dict.fromkeys(SEED_COUNTS, 0.0)
    print(f"method={args.method} experiments={args.experiments} images=120 level=0.95")
    for sigma_seed in SIGMA_SEED:
        for sigma_img in SIGMA_IMG:
            rates = rejection_rates(args.method, rng, args.experiments, sigma_seed, sigma_img)
            worst = {k: max(worst[k], rates[k]) for k in SEED_COUNTS}
            pooled = {k: pooled[k] + rates[k] / (len(SIGMA_SEED) * len(SIGMA_IMG)) for k in pooled}
            cells = " ".join(f"fpr_{k}={rates[k]:.3f}" for k in SEED_COUNTS)
            if args.one_seed and args.method == "new":
                one = rejection_rates(
                    "new", rng, min(args.experiments, 500), sigma_seed, sigma_img, seed_counts=(1,)
                )
                cells = f"fpr_1={one[1]:.3f} " + cells
            print(f"sigma_seed={sigma_seed:g} sigma_img={sigma_img:g} {cells}", flush=True)
    sigma_seed, sigma_img = args.power_mix
    power = rejection_rates(
        args.method, rng, args.experiments, sigma_seed, sigma_img, effect=args.effect
    )
    cells = " ".join(f"power_{k}={power[k]:.3f}" for k in SEED_COUNTS)
    print(f"sigma_seed={sigma_seed:g} sigma_img={sigma_img:g} effect={args.effect:g} {cells}")
    print("pooled over mixes: " + " ".join(f"fpr_{k}={pooled[k]:.3f}" for k in SEED_COUNTS))
    print(f"seconds={time.perf_counter() - start:.1f}")
    print(
        " ".join(f"fpr_{k}={worst[k]:.3f}" for k in SEED_COUNTS)
        + f" power_5={power[5]:.3f} effect={args.effect:g}"
    )


if __name__ == "__main__":
    main()
