"""SaliencyCut recovers a clear object and handles degenerate maps."""

import numpy as np
import pytest

from sslseg.errors import SslsegError
from sslseg.saliency.cut import saliency_cut
from sslseg.saliency.rc import rc


def scene(h: int = 240, w: int = 320, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Textured two-tone background with an orange ellipse (the object)."""
    rng = np.random.default_rng(seed)
    img = np.empty((h, w, 3), np.float64)
    img[:] = (60, 110, 70)
    img[:, w // 2 :] = (90, 120, 140)
    img += rng.normal(0, 10, img.shape)
    yy, xx = np.mgrid[:h, :w]
    obj = ((yy - 0.55 * h) / (0.3 * h)) ** 2 + ((xx - 0.45 * w) / (0.22 * w)) ** 2 <= 1
    img[obj] = np.array((230, 150, 40)) + rng.normal(0, 10, (int(obj.sum()), 3))
    return np.clip(img, 0, 255).astype(np.uint8), obj


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_cut_recovers_object_from_partial_map():
    img, obj = scene()
    # a poor map: only the object's upper half is salient, plus a false blob in the background
    sal = np.zeros(obj.shape, np.float32)
    sal[obj & (np.arange(obj.shape[0])[:, None] < 0.55 * obj.shape[0])] = 0.9
    sal[10:30, 260:300] = 0.6
    mask = saliency_cut(img, sal)
    assert mask.dtype == bool and mask.shape == obj.shape
    assert iou(mask, obj) > 0.9
    assert iou(sal >= 70 / 255, obj) < 0.6  # the cut, not the threshold, did the work


def test_cut_on_rc_map_and_full_resolution():
    img, obj = scene(seed=1)
    sal = rc(img).saliency
    assert iou(saliency_cut(img, sal), obj) > 0.9
    assert iou(saliency_cut(img, sal, work_side=None, iterations=2), obj) > 0.9


def test_cut_degenerate_maps_and_inputs():
    img, obj = scene(60, 80)
    zeros = np.zeros(obj.shape, np.float32)
    assert not saliency_cut(img, zeros).any()
    assert saliency_cut(img, zeros + 1).all()
    tiny = np.zeros((3, 3, 3), np.uint8)
    assert saliency_cut(tiny, np.ones((3, 3), np.float32)).all()
    with pytest.raises(SslsegError, match="shape"):
        saliency_cut(img, zeros[:10])
    with pytest.raises(SslsegError, match="threshold"):
        saliency_cut(img, zeros, threshold=70)
