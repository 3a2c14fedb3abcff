"""Error bars and paired differences for the experiment report.

Two sources of noise matter: which images ended up in the test set, and the training run
(initialisation, augmentation, batch order), which the seed fixes. ``mean_interval`` is the
Student-t interval of a metric over seeds. ``paired_iou_difference`` compares two models that
share a seed (and therefore a split and test set) with a hierarchical paired bootstrap: seeds
are resampled, then test images within each seed, and the dataset-level IoU of both models is
recomputed on the same resampled images, so both kinds of noise widen the interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as sps


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


def mean_interval(values: np.ndarray, level: float = 0.95) -> Interval:
    """Mean and Student-t interval over independent runs (NaN-wide for a single run)."""
    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    if len(values) < 2:
        return Interval(mean, float("nan"), float("nan"))
    half = sps.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return Interval(mean, mean - float(half), mean + float(half))


def dataset_iou(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Pooled IoU along the last axis (sum of counts, then the ratio)."""
    inter = tp.sum(-1)
    return inter / np.maximum(inter + fp.sum(-1) + fn.sum(-1), 1)


def paired_iou_difference(
    model: list[dict[str, np.ndarray]],
    baseline: list[dict[str, np.ndarray]],
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """IoU(model) - IoU(baseline), averaged over seeds, with a paired bootstrap interval.

    ``model[s]`` and ``baseline[s]`` hold per-image ``tp``, ``fp``, ``fn`` arrays for seed ``s``
    on the same test images in the same order.
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
