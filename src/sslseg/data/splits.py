"""Splits as in seed 1 (§3.1): a fixed test set, nested development sets, train/val inside.

Item ids are sorted first, so the splits depend only on (ids, fractions, seed) and not on
the order a folder listing returned. One permutation orders everything: the first
``test_fraction`` of it is the test set, and each dev set is a prefix of the rest, so the
0.2 dev set lies inside the 0.5 one. Inside a dev set, a second seeded key picks the
``val_fraction`` validation items.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sslseg.errors import SslsegError


@dataclass(frozen=True)
class Split:
    """Indices into the store for one dev fraction."""

    dev_fraction: float
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    @property
    def dev(self) -> np.ndarray:
        return np.sort(np.concatenate([self.train, self.val]))


def make_split(
    ids: list[str],
    dev_fraction: float,
    seed: int,
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
) -> Split:
    """Train/val/test indices for ``dev_fraction`` of the whole dataset."""
    n = len(ids)
    if not 0 < test_fraction < 1:
        raise SslsegError(f"config: test_fraction: {test_fraction} must be in (0, 1)")
    if not 0 < dev_fraction <= 1 - test_fraction + 1e-9:
        raise SslsegError(
            f"config: dev_fraction: {dev_fraction} must be in (0, "
            f"{1 - test_fraction:g}] with test_fraction {test_fraction:g}"
        )
    if not 0 < val_fraction < 1:
        raise SslsegError(f"config: val_fraction: {val_fraction} must be in (0, 1)")
    order = np.argsort(np.array(ids, dtype=object), kind="stable")
    rng = np.random.default_rng(seed)
    perm = order[rng.permutation(n)]
    n_test = round(test_fraction * n)
    n_dev = min(round(dev_fraction * n), n - n_test)
    if n_test < 1 or n_dev < 2:
        raise SslsegError(
            f"config: dev_fraction: {n} items give {n_dev} dev and {n_test} test "
            "items; need at least 2 dev and 1 test"
        )
    test, dev = perm[:n_test], perm[n_test : n_test + n_dev]
    # the val key is drawn for every non-test item, so val membership is stable across fractions
    val_key = np.random.default_rng([seed, 1]).random(n)
    n_val = max(1, round(val_fraction * n_dev))
    by_key = dev[np.argsort(val_key[dev], kind="stable")]
    val, train = by_key[:n_val], by_key[n_val:]
    return Split(dev_fraction, np.sort(train), np.sort(val), np.sort(test))
