import numpy as np
import pytest

from sslseg.eval.linear import DEFAULT_FRACTIONS, fraction_subsets, linear_curve, linear_probe


def test_fractions_are_nested_stratified_and_seeded():
    labels = np.repeat(np.arange(4), [50, 30, 20, 100])
    subsets = fraction_subsets(labels, DEFAULT_FRACTIONS, seed=3)
    assert list(subsets) == list(DEFAULT_FRACTIONS)
    previous = np.zeros(0, np.int64)
    for f, idx in subsets.items():
        assert len(np.unique(idx)) == len(idx)
        assert set(previous) <= set(idx)  # nested
        counts = np.bincount(labels[idx], minlength=4)
        expected = [max(1, round(f * n)) for n in (50, 30, 20, 100)]
        assert counts.tolist() == expected  # stratified
        previous = idx
    assert np.array_equal(subsets[1.0], np.arange(200))
    again = fraction_subsets(labels, DEFAULT_FRACTIONS, seed=3)
    other = fraction_subsets(labels, DEFAULT_FRACTIONS, seed=4)
    assert np.array_equal(again[0.3], subsets[0.3])
    assert not np.array_equal(other[0.3], subsets[0.3])


def test_fraction_out_of_range_is_rejected():
    with pytest.raises(ValueError):
        fraction_subsets(np.zeros(10, int), [0.0])


def test_linear_probe_on_separable_features_is_perfect(blobs):
    train_x, train_y = blobs(40, 4, spread=0.2, seed=0)
    rng = np.random.default_rng(1)
    test_x = train_x + 0.01 * rng.normal(size=train_x.shape).astype(np.float32)
    acc, converged = linear_probe(train_x, train_y, test_x, train_y)
    assert acc == 1.0 and converged


def test_linear_curve_rises_with_labels_on_noisy_features(blobs):
    train_x, train_y = blobs(100, 5, dim=16, spread=3.0, seed=0)
    test_x, test_y = blobs(100, 5, dim=16, spread=3.0, seed=0)
    test_x = test_x[::-1].copy()  # different order, same distribution
    test_y = test_y[::-1].copy()
    rows = linear_curve(train_x, train_y, test_x, test_y, fractions=[0.02, 1.0])
    assert [r["n_labels"] for r in rows] == [10, 500]
    assert rows[1]["accuracy"] > 0.5 > 1 / 5
    assert rows[1]["accuracy"] >= rows[0]["accuracy"]
