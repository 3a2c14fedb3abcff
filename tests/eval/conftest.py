"""Synthetic features for the evaluation tests (the labelled folder: tests/conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest


def make_blobs(
    n_per_class: int, classes: int, dim: int = 32, spread: float = 0.3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs around random unit centres: linearly and cosine separable."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = np.repeat(np.arange(classes), n_per_class)
    feats = centres[labels] + spread / np.sqrt(dim) * rng.normal(size=(len(labels), dim))
    return feats.astype(np.float32), labels


@pytest.fixture
def blobs():
    """The :func:`make_blobs` generator (a fixture, so test modules need not import conftest)."""
    return make_blobs
