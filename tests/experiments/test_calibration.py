"""The report's paired ΔIoU test keeps its 5% false-positive rate on simulated experiments
(``benchmarks/stats_calibration.py``, small), and the check is strict enough to fail the
hierarchical bootstrap it replaced."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "stats_calibration.py"
EXPERIMENTS = 400
# binomial: at a true 5%, 400 experiments give sd 0.011; 0.09 is 3.7 sd above
LIMIT = 0.09


@pytest.fixture(scope="module")
def calibration():
    spec = importlib.util.spec_from_file_location("stats_calibration", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("sigma_seed, sigma_img", [(0.0, 0.02), (0.04, 0.1), (0.08, 0.02)])
def test_report_test_keeps_its_false_positive_rate(calibration, sigma_seed, sigma_img):
    rng = np.random.default_rng(11)
    rates = calibration.rejection_rates(
        "new", rng, EXPERIMENTS, sigma_seed, sigma_img, seed_counts=(2, 3, 5)
    )
    assert max(rates.values()) <= LIMIT, rates


def test_report_test_sees_a_real_gain(calibration):
    rng = np.random.default_rng(12)
    power = calibration.rejection_rates(
        "new", rng, 200, 0.02, 0.1, effect=0.05, seed_counts=(5, 10)
    )
    assert power[5] > 0.5 and power[10] > 0.9, power


def test_old_hierarchical_bootstrap_fails_the_same_check(calibration):
    rng = np.random.default_rng(11)
    rates = calibration.rejection_rates("old", rng, EXPERIMENTS, 0.04, 0.1, seed_counts=(2,))
    assert rates[2] > LIMIT, rates  # about 0.25: the check can fail


def test_batched_old_method_is_the_removed_function(calibration):
    rng = np.random.default_rng(13)
    model, baseline = calibration.simulate(rng, 3, 2, 0.04, 0.1, n_images=50)
    batched = calibration.old_method(model, baseline, n_boot=300)
    for e in range(3):
        runs = [
            [{k: x[e, s, :, i] for i, k in enumerate(calibration.KEYS)} for s in range(2)]
            for x in (model, baseline)
        ]
        one = calibration.hierarchical_bootstrap_difference(*runs, n_boot=300)
        assert (one.mean, one.low, one.high) == pytest.approx(
            (batched[e].mean, batched[e].low, batched[e].high), abs=1e-12
        )
