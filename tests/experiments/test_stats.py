import numpy as np
import pytest

from sslseg.experiments.stats import dataset_iou, mean_interval, paired_iou_difference


def test_t_interval_on_known_numbers():
    # mean 2, sample sd 1, n 3: half width = t(0.975, 2) * 1 / sqrt(3) = 4.302653 / 1.732051
    interval = mean_interval(np.array([1.0, 2.0, 3.0]))
    assert interval.mean == 2.0
    assert interval.half_width == pytest.approx(4.302653 / np.sqrt(3), rel=1e-5)
    assert np.isnan(mean_interval(np.array([0.5])).low)


def test_dataset_iou_pools_counts():
    assert dataset_iou(np.array([1, 3]), np.array([1, 0]), np.array([0, 1])) == pytest.approx(4 / 6)


def _counts(rng, n, quality):
    tp = rng.integers(50, 100, n).astype(float)
    return {"tp": tp, "fp": np.round(tp * (1 - quality)), "fn": np.round(tp * (1 - quality))}


def test_identical_models_differ_by_zero():
    rng = np.random.default_rng(0)
    runs = [_counts(rng, 40, 0.7) for _ in range(3)]
    diff = paired_iou_difference(runs, runs, n_boot=300)
    assert diff.mean == 0 and diff.low == 0 and diff.high == 0


def test_clear_gain_is_detected_and_noise_is_not():
    rng = np.random.default_rng(1)
    base = [_counts(rng, 60, 0.6) for _ in range(3)]
    better = [{**b, "fp": np.round(b["fp"] * 0.5), "fn": np.round(b["fn"] * 0.5)} for b in base]
    gain = paired_iou_difference(better, base, n_boot=500)
    assert gain.low > 0 and gain.excludes_zero()
    noisy = [{k: v + rng.integers(-3, 4, v.shape) for k, v in b.items()} for b in base]
    noise = paired_iou_difference(noisy, base, n_boot=500)
    assert noise.low < 0 < noise.high


def test_unpaired_runs_are_refused():
    rng = np.random.default_rng(2)
    with pytest.raises(ValueError):
        paired_iou_difference([_counts(rng, 5, 0.5)], [_counts(rng, 6, 0.5)])
