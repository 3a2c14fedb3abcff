import math

import numpy as np
import pytest

from sslseg.experiments.stats import (
    NON_NEGATIVE,
    UNIT,
    dataset_iou,
    mean_interval,
    minimum_detectable_effect,
    paired_iou_difference,
    seeds_needed,
)

T_975_2 = 4.302653  # t(0.975, 2 d.f.)
T_80_2 = math.sqrt(1.125)  # t(0.8, 2 d.f.): t / sqrt(t^2 + 2) = 0.6 for 2 d.f.


def test_t_interval_on_known_numbers():
    # mean 2, sample sd 1, n 3: half width = t(0.975, 2) * 1 / sqrt(3) = 4.302653 / 1.732051
    interval = mean_interval(np.array([1.0, 2.0, 3.0]))
    assert interval.mean == 2.0
    assert interval.half_width == pytest.approx(T_975_2 / np.sqrt(3), rel=1e-5)
    assert np.isnan(mean_interval(np.array([0.5])).low)


def test_bounded_metrics_are_clipped():
    # two seeds, t with 1 d.f. = 12.706: 0.5 ± 5.08 unclipped
    iou = mean_interval([0.1, 0.9], bounds=UNIT)
    assert (iou.mean, iou.low, iou.high) == (0.5, 0.0, 1.0)
    loss = mean_interval([0.1, 0.9], bounds=NON_NEGATIVE)
    assert loss.low == 0.0
    assert loss.high == pytest.approx(0.5 + 12.7062 * 0.8 / math.sqrt(2) / math.sqrt(2), rel=1e-4)
    inside = mean_interval([0.50, 0.52, 0.51], bounds=UNIT)
    assert inside == mean_interval([0.50, 0.52, 0.51])  # nothing to clip
    diff = paired_iou_difference([0.95, 0.1], [0.05, 0.6])  # per-seed 0.9, -0.5
    assert (diff.low, diff.high) == (-1.0, 1.0)


def test_dataset_iou_pools_counts():
    assert dataset_iou(np.array([1, 3]), np.array([1, 0]), np.array([0, 1])) == pytest.approx(4 / 6)


def test_paired_t_over_seeds_matches_hand_computation():
    # the per-seed differences of CIFAR at dev 0.2 in the Table 4.1 cpu report
    d = [0.015, 0.035, 0.004]
    diff = paired_iou_difference([0.5 + x for x in d], [0.5] * 3)
    sd = math.sqrt(((0.015 - 0.018) ** 2 + (0.035 - 0.018) ** 2 + (0.004 - 0.018) ** 2) / 2)
    se = sd / math.sqrt(3)
    assert sd == pytest.approx(0.0157162, rel=1e-5)
    assert diff.basis == "seeds-t" and diff.n_seeds == 3
    assert diff.mean == pytest.approx(0.018, abs=1e-12)
    assert diff.low == pytest.approx(0.018 - T_975_2 * se, abs=1e-6)  # -0.02104
    assert diff.high == pytest.approx(0.018 + T_975_2 * se, abs=1e-6)  # +0.05704
    assert diff.sd == pytest.approx(sd, rel=1e-9)
    # 2 d.f.: two-sided p = 1 - |t| / sqrt(t^2 + 2)
    t = 0.018 / se
    assert diff.p_value == pytest.approx(1 - t / math.sqrt(t * t + 2), rel=1e-6)
    assert diff.mde == pytest.approx((T_975_2 + T_80_2) * se, rel=1e-5)  # 0.04867
    assert diff.per_seed == pytest.approx(d, abs=1e-12)
    assert not diff.excludes_zero()


def test_family_wise_level_widens_the_interval():
    d = [0.5 + x for x in (0.015, 0.035, 0.004)]
    strict = paired_iou_difference(d, [0.5] * 3, level=1 - 0.05 / 6)
    normal = paired_iou_difference(d, [0.5] * 3)
    assert strict.low < normal.low and strict.high > normal.high and strict.mde > normal.mde
    assert strict.level == pytest.approx(1 - 0.05 / 6)
    with pytest.raises(ValueError):
        paired_iou_difference(d, [0.5] * 3, level=1.0)


def test_mde_formula_and_seeds_needed():
    sd = 0.02
    assert minimum_detectable_effect(sd, 3) == pytest.approx((T_975_2 + T_80_2) * sd / math.sqrt(3))
    assert np.isnan(minimum_detectable_effect(sd, 1))
    n = seeds_needed(sd, 0.02)
    assert minimum_detectable_effect(sd, n) <= 0.02 < minimum_detectable_effect(sd, n - 1)


def _counts(rng, n, quality):
    tp = rng.integers(50, 100, n).astype(float)
    return {"tp": tp, "fp": np.round(tp * (1 - quality)), "fn": np.round(tp * (1 - quality))}


def test_counts_and_ious_give_the_same_comparison():
    rng = np.random.default_rng(3)
    base = [_counts(rng, 40, 0.6) for _ in range(3)]
    model = [_counts(rng, 40, 0.7) for _ in range(3)]
    from_counts = paired_iou_difference(model, base)
    ious = [[float(dataset_iou(r["tp"], r["fp"], r["fn"])) for r in runs] for runs in (model, base)]
    from_ious = paired_iou_difference(*ious)
    assert (from_counts.mean, from_counts.low, from_counts.high) == pytest.approx(
        (from_ious.mean, from_ious.low, from_ious.high)
    )


def test_identical_models_differ_by_zero():
    rng = np.random.default_rng(0)
    runs = [_counts(rng, 40, 0.7) for _ in range(3)]
    diff = paired_iou_difference(runs, runs, n_boot=300)
    assert diff.mean == 0 and diff.low == 0 and diff.high == 0
    assert diff.p_value == 1.0


def test_clear_gain_is_detected():
    rng = np.random.default_rng(1)
    base = [_counts(rng, 60, 0.6) for _ in range(3)]
    better = [{**b, "fp": np.round(b["fp"] * 0.5), "fn": np.round(b["fn"] * 0.5)} for b in base]
    gain = paired_iou_difference(better, base, n_boot=500)
    assert gain.low > 0 and gain.excludes_zero() and gain.p_value < 0.01


def test_single_seed_is_an_image_bootstrap_conditional_on_the_run():
    rng = np.random.default_rng(4)
    base = _counts(rng, 80, 0.6)
    model = {**base, "fp": base["fp"] + rng.integers(-8, 9, 80).clip(-base["fp"])}
    diff = paired_iou_difference([model], [base], n_boot=500)
    assert diff.basis == "images-bootstrap-1-run" and diff.conditional_on_one_run
    assert diff.n_seeds == 1 and np.isnan(diff.mde)
    assert diff.low <= diff.mean <= diff.high
    assert 0 < diff.p_value <= 1
    # same replicates (same seed): a wider level reads further into the same tails
    wide = paired_iou_difference([model], [base], n_boot=500, level=0.99)
    assert wide.low <= diff.low and wide.high >= diff.high
    # without per-image counts a single seed has no interval
    alone = paired_iou_difference([0.6], [0.55])
    assert alone.basis == "none" and alone.mean == pytest.approx(0.05)
    assert np.isnan(alone.low) and np.isnan(alone.p_value) and not alone.excludes_zero()


def test_unpaired_runs_are_refused():
    rng = np.random.default_rng(2)
    with pytest.raises(ValueError):
        paired_iou_difference([_counts(rng, 5, 0.5)], [_counts(rng, 6, 0.5)])
    with pytest.raises(ValueError):
        paired_iou_difference([0.5, 0.6], [0.5])
