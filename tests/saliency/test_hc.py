"""HC saliency and the shared colour quantisation (Cheng et al. TPAMI 2015, Sec. 3)."""

import numpy as np
import pytest

from sslseg.errors import SslsegError
from sslseg.saliency.hc import hc, quantise, smooth_colour_saliency


def two_colour(h: int = 80, w: int = 100) -> tuple[np.ndarray, np.ndarray]:
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = (30, 60, 200)  # common blue background
    rare = np.zeros((h, w), bool)
    rare[30:50, 40:60] = True  # 5 % of the pixels
    img[rare] = (220, 40, 30)
    return img, rare


def test_rarer_colour_is_salient():
    img, rare = two_colour()
    sal = hc(img)
    assert sal.dtype == np.float32 and sal.shape == rare.shape
    assert sal.min() == 0.0 and sal.max() == pytest.approx(1.0)
    # away from the 3x3 blur at the boundary the rare colour is ~1 and the common one ~0
    assert sal[35:45, 45:55].min() > 0.9
    assert sal[:20].max() < 0.1


def test_quantise_keeps_95_percent_and_maps_the_rest():
    rng = np.random.default_rng(0)
    img = np.zeros((100, 100, 3), np.uint8)
    img[:] = (10, 200, 10)
    img[:50] = (200, 10, 10)
    noise = rng.random((100, 100)) < 0.02  # 2 % of pixels in random (rare) colours
    img[noise] = rng.integers(0, 256, (int(noise.sum()), 3))
    q = quantise(img)
    assert 2 <= q.lab.shape[0] <= 256
    assert q.counts.sum() == img.shape[0] * img.shape[1]
    idx = q.colour_index()
    assert idx.min() >= 0 and idx.max() < q.lab.shape[0]
    # the two dominant colours are kept as the two most frequent
    assert set(q.counts.argsort()[-2:]) == {idx[0, 0], idx[-1, 0]}


def test_smoothing_matches_formula():
    sal = np.array([1.0, 0.0, 0.5, 0.2], np.float32)
    pts = np.array([0.0, 1.0, 3.0, 7.0])
    dist = np.abs(pts[:, None] - pts[None, :]).astype(np.float32)
    out = smooth_colour_saliency(sal, dist, delta=2.0)  # m = 2 nearest (self + one)
    # colour 0: neighbours {0 (d=0), 1 (d=1)}, T = 1: ((1-0)*1 + (1-1)*0) / (1*1) = 1
    assert out[0] == pytest.approx(1.0)
    # colour 2: neighbours {2 (d=0), 1 (d=2)}, T = 2: (2*0.5 + 0*0) / 2 = 0.5
    assert out[2] == pytest.approx(0.5)


@pytest.mark.parametrize(
    "img",
    [
        np.zeros((1, 1, 3), np.uint8),
        np.full((40, 30, 3), 128, np.uint8),
        np.zeros((0, 5, 3), np.uint8),
    ],
    ids=["1x1", "single-colour", "empty"],
)
def test_degenerate_images(img):
    if img.size == 0:
        with pytest.raises(SslsegError):
            hc(img)
        return
    sal = hc(img)
    assert sal.shape == img.shape[:2] and not sal.any()


def test_greyscale_and_float_inputs():
    img, _ = two_colour()
    grey = img.mean(axis=2).astype(np.uint8)
    assert hc(grey).shape == grey.shape
    np.testing.assert_allclose(hc(img.astype(np.float32) / 255), hc(img), atol=1e-6)
    with pytest.raises(SslsegError, match="dtype"):
        hc(img.astype(np.int64))
    with pytest.raises(SslsegError, match="shape"):
        hc(np.zeros((4, 4, 5), np.uint8))


def test_pixel_binning_matches_the_bin_formula():
    import importlib

    hc_module = importlib.import_module("sslseg.saliency.hc")  # the package exports hc()
    rgb = np.random.default_rng(3).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    bins, hist, sums = hc_module._bin_pixels(
        rgb, hc_module._LUT_B, hc_module._LUT_G, hc_module._LUT_R
    )
    # CmCode: bin = 144 * level(B) + 12 * level(G) + level(R), level(v) = int(v / 255 * 11.9999)
    level = (rgb.astype(np.float64) / 255 * (12 - 1e-4)).astype(np.int64)
    expected = 144 * level[:, :, 2] + 12 * level[:, :, 1] + level[:, :, 0]
    assert np.array_equal(bins, expected)
    assert np.array_equal(hist, np.bincount(expected.ravel(), minlength=1728))
    for c in range(3):
        weights = rgb[:, :, c].ravel().astype(np.int64)
        assert np.array_equal(sums[:, c], np.bincount(expected.ravel(), weights, 1728))
