"""Error bars and paired differences for the experiment report (see docs/statistics.md).

Two sources of noise matter: which images ended up in the test set, and the training run
(initialisation, augmentation, batch order, and here also the split), which the seed fixes.
The training run is the larger one, and it is only sampled once per seed: however many test
images there are, a comparison of two models has as many independent units as seeds.

* ``mean_interval``: mean and Student-t interval of a metric over seeds, optionally clipped to
  the metric's range (IoU, F1, recall, accuracy in [0, 1]; losses >= 0).
* ``paired_iou_difference``: IoU(model) - IoU(baseline) over seeds that both share (same split,
  same test images). With two or more seeds: the paired Student t interval over the per-seed
  differences (Student 1908; for learning algorithms Dietterich 1998, Bouthillier et al. 2021),
  with its p-value and minimum detectable effect. With one seed: a paired bootstrap over test
  images, which says nothing about another training run and is labelled as such.

The hierarchical bootstrap this replaced (resample 2-3 seeds, then images) called a difference
real in 24 % (2 seeds) to 10 % (5 seeds) of simulated experiments without one, against a
nominal 5 %; ``benchmarks/stats_calibration.py`` measures both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from scipy import stats as sps

UNIT: tuple[float, float] = (0.0, 1.0)
"""Range of IoU, F1, recall, precision, accuracy, AP."""
NON_NEGATIVE: tuple[float, float] = (0.0, math.inf)
"""Range of the losses (Dice, Focal, BCE)."""
DIFFERENCE: tuple[float, float] = (-1.0, 1.0)
"""Range of a difference of two [0, 1] metrics."""

Basis = Literal["seeds-t", "images-bootstrap-1-run", "none"]
Counts = Mapping[str, np.ndarray]
RunResult = Counts | float


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


@dataclass(frozen=True)
class PairedDifference(Interval):
    """A paired ΔIoU: ``mean`` over seeds, ``low``/``high`` at ``level``, and how it was got.

    ``basis``: ``"seeds-t"`` (Student t over per-seed differences, >= 2 seeds),
    ``"images-bootstrap-1-run"`` (one seed: test images resampled, conditional on that one
    training run) or ``"none"`` (one seed and no per-image counts: no interval).
    ``mde``: the smallest |ΔIoU| this many seeds detect with ``power`` at ``level``, from the
    observed seed-to-seed sd of the difference (NaN with one seed).
    """

    n_seeds: int = 0
    basis: Basis = "seeds-t"
    level: float = 0.95
    p_value: float = math.nan
    mde: float = math.nan
    sd: float = math.nan
    per_seed: tuple[float, ...] = ()

    @property
    def conditional_on_one_run(self) -> bool:
        return self.basis == "images-bootstrap-1-run"


def clip_interval(interval: Interval, bounds: tuple[float, float] | None) -> Interval:
    """``interval`` with ``low``/``high`` (not ``mean``) clipped to ``bounds``; NaN stays NaN."""
    if bounds is None or np.isnan(interval.low):
        return interval
    lo, hi = bounds
    return Interval(interval.mean, max(interval.low, lo), min(interval.high, hi))


def mean_interval(
    values: Sequence[float] | np.ndarray,
    level: float = 0.95,
    bounds: tuple[float, float] | None = None,
) -> Interval:
    """Mean and Student-t interval over independent runs (NaN-wide for a single run).

    ``bounds`` clips the interval to the metric's range: with 2-3 seeds a t-interval of an IoU
    easily reaches below 0 or above 1, values the metric cannot take.
    """
    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    if len(values) < 2:
        return Interval(mean, math.nan, math.nan)
    half = _t(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return clip_interval(Interval(mean, mean - half, mean + half), bounds)


def dataset_iou(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Pooled IoU along the last axis (sum of counts, then the ratio)."""
    inter = tp.sum(-1)
    return inter / np.maximum(inter + fp.sum(-1) + fn.sum(-1), 1)


def minimum_detectable_effect(sd: float, n: int, level: float = 0.95, power: float = 0.8) -> float:
    """Smallest true mean difference a two-sided paired t test over ``n`` seeds detects with
    probability ``power`` at ``level``: (t_{1-α/2, n-1} + t_{power, n-1}) · sd / √n.

    ``sd`` is the seed-to-seed sd of the per-seed difference; NaN for fewer than 2 seeds.
    """
    if n < 2 or not np.isfinite(sd):
        return math.nan
    return (_t(0.5 + level / 2, n - 1) + _t(power, n - 1)) * sd / math.sqrt(n)


def seeds_needed(
    sd: float, effect: float, level: float = 0.95, power: float = 0.8, most: int = 1000
) -> int | None:
    """Fewest seeds whose ``minimum_detectable_effect`` is <= ``effect`` (None beyond ``most``)."""
    if not (np.isfinite(sd) and effect > 0):
        return None
    for n in range(2, most + 1):
        if minimum_detectable_effect(sd, n, level, power) <= effect:
            return n
    return None


def paired_iou_difference(
    model: Sequence[RunResult],
    baseline: Sequence[RunResult],
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    power: float = 0.8,
) -> PairedDifference:
    """IoU(model) - IoU(baseline) over paired seeds, with an interval that respects the design.

    ``model[s]`` and ``baseline[s]`` belong to seed ``s`` (same split, same test images). Each
    is either a dict of per-image ``tp``, ``fp``, ``fn`` arrays in test-set order, or the run's
    dataset-level IoU as a float (what ``results.csv`` keeps).

    * Two or more seeds: the seeds are the independent units. d_s = IoU_model(s) -
      IoU_baseline(s), interval mean(d) ± t_{1-α/2, n-1} · sd(d) / √n, two-sided t p-value,
      and the MDE. Test-image noise is already inside each d_s; resampling the few seeds (the
      old hierarchical bootstrap) under-covers badly with 2-5 of them.
    * One seed: a paired bootstrap over test images (``n_boot`` replicates, ``seed``), whose
      interval holds only for that one training run (``basis="images-bootstrap-1-run"``); it
      needs per-image counts, else there is no interval (``basis="none"``).

    ``level`` sets the coverage, e.g. ``1 - 0.05 / m`` for a family of m comparisons.
    Intervals are clipped to [-1, 1].
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if len(model) != len(baseline) or not model:
        raise ValueError("need the same, non-zero number of seeds for both models")
    for m, b in zip(model, baseline, strict=True):
        if isinstance(m, Mapping) and isinstance(b, Mapping) and len(m["tp"]) != len(b["tp"]):
            raise ValueError("paired runs must share their test images")
    diffs = np.array([_iou(m) - _iou(b) for m, b in zip(model, baseline, strict=True)])
    mean, n = float(diffs.mean()), len(diffs)
    per_seed = tuple(float(d) for d in diffs)
    if n == 1:
        m, b = model[0], baseline[0]
        if not (isinstance(m, Mapping) and isinstance(b, Mapping)):
            return PairedDifference(
                mean, math.nan, math.nan, n_seeds=1, basis="none", level=level, per_seed=per_seed
            )
        low, high, p = _image_bootstrap(m, b, n_boot, level, seed)
        return PairedDifference(
            mean,
            max(low, DIFFERENCE[0]),
            min(high, DIFFERENCE[1]),
            n_seeds=1,
            basis="images-bootstrap-1-run",
            level=level,
            p_value=p,
            per_seed=per_seed,
        )
    sd = float(diffs.std(ddof=1))
    se = sd / math.sqrt(n)
    half = _t(0.5 + level / 2, n - 1) * se
    if se > 0:
        p = float(2 * sps.t.sf(abs(mean) / se, n - 1))
    else:  # every seed gave the same difference
        p = 1.0 if mean == 0 else 0.0
    return PairedDifference(
        mean,
        max(mean - half, DIFFERENCE[0]),
        min(mean + half, DIFFERENCE[1]),
        n_seeds=n,
        basis="seeds-t",
        level=level,
        p_value=p,
        mde=minimum_detectable_effect(sd, n, level, power),
        sd=sd,
        per_seed=per_seed,
    )


@lru_cache(maxsize=256)
def _t(q: float, df: int) -> float:
    return float(sps.t.ppf(q, df))


def _iou(run: RunResult) -> float:
    if isinstance(run, Mapping):
        return float(
            dataset_iou(*(np.asarray(run[k], dtype=np.float64) for k in ("tp", "fp", "fn")))
        )
    return float(run)


def _image_bootstrap(
    model: Counts, baseline: Counts, n_boot: int, level: float, seed: int
) -> tuple[float, float, float]:
    """Percentile interval and two-sided p of the paired ΔIoU over resampled test images."""
    counts = np.stack(
        [np.asarray(r[k], dtype=np.float64) for r in (model, baseline) for k in ("tp", "fp", "fn")],
        axis=1,
    )  # images x 6
    n = len(counts)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    flat = (np.arange(n_boot)[:, None] * n + idx).ravel()
    weights = np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)
    sums = weights @ counts  # n_boot x 6: the resampled totals
    diffs = dataset_iou(sums[:, 0:1], sums[:, 1:2], sums[:, 2:3]) - dataset_iou(
        sums[:, 3:4], sums[:, 4:5], sums[:, 5:6]
    )
    alpha = (1 - level) / 2
    low, high = np.quantile(diffs, [alpha, 1 - alpha])
    tail = min((diffs <= 0).sum(), (diffs >= 0).sum())
    p = min(1.0, 2 * (tail + 1) / (n_boot + 1))
    return float(low), float(high), float(p)
