"""Synthetic data for the evaluation tests: separable features and a tiny labelled folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


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


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """3 classes x 8 images of 16 px, each class a distinct colour with noise."""
    root = tmp_path / "images"
    rng = np.random.default_rng(0)
    colours = [(220, 40, 40), (40, 220, 40), (40, 40, 220)]
    for name, colour in zip(("red", "green", "blue"), colours, strict=True):
        (root / name).mkdir(parents=True)
        for i in range(8):
            img = np.clip(np.array(colour) + rng.normal(0, 20, (16, 16, 3)), 0, 255)
            Image.fromarray(img.astype(np.uint8)).save(root / name / f"{i}.png")
    return root
