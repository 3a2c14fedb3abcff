"""RC saliency: spatial weight, region statistics and contrast as defined in Cheng et al."""

import numpy as np
import pytest

from sslseg.errors import SslsegError
from sslseg.saliency._image import MAX_INPUT_PIXELS
from sslseg.saliency.rc import (
    SIGMA_S2,
    Regions,
    rc,
    region_contrast,
    region_stats,
    spatial_weight,
)
from sslseg.saliency.regions import felzenszwalb, region_sizes


def object_image(h: int = 120, w: int = 160, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    img = np.empty((h, w, 3), np.uint8)
    img[:] = (90, 140, 90)
    img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
    yy, xx = np.mgrid[:h, :w]
    obj = ((yy - h / 2) / (h / 5)) ** 2 + ((xx - w / 2) / (w / 6)) ** 2 <= 1
    img[obj] = (210, 40, 40)
    return img, obj


def test_spatial_weight_definition():
    c = np.array([[0.0, 0.0], [1.0, 0.0], [0.3, 0.4]])
    w = spatial_weight(c)
    np.testing.assert_allclose(np.diag(w), 1.0)
    assert w[0, 1] == pytest.approx(np.exp(-1.0 / SIGMA_S2))  # D_s = squared distance = 1
    assert w[0, 2] == pytest.approx(np.exp(-0.25 / 0.4))  # 0.3^2 + 0.4^2
    np.testing.assert_allclose(w, w.T)


def test_region_stats_sizes_centroids_histograms():
    labels = np.zeros((10, 20), np.int32)
    labels[:, 15:] = 1  # 50 px on the right
    colours = np.zeros((10, 20), np.int32)
    colours[:5, 15:] = 1  # region 1 is half colour 0, half colour 1
    reg = region_stats(labels, 2, colours, 2)
    np.testing.assert_array_equal(reg.size, [150, 50])
    np.testing.assert_array_equal(region_sizes(labels), [150, 50])
    np.testing.assert_allclose(reg.centroid[1], [17 / 20, 4.5 / 10])
    np.testing.assert_allclose(reg.histogram, [[1, 0], [0.5, 0.5]])


def test_region_contrast_matches_definition():
    rng = np.random.default_rng(1)
    k, c = 5, 4
    hist = rng.random((k, c)).astype(np.float32)
    hist /= hist.sum(1, keepdims=True)
    cd = rng.random((c, c)).astype(np.float32)
    cd = (cd + cd.T) / 2
    np.fill_diagonal(cd, 0)
    reg = Regions(
        rng.integers(50, 500, k).astype(float), rng.random((k, 2)), rng.random((k, 2)) / 2, hist
    )
    got = region_contrast(reg, cd, centre_prior=True)
    want = np.zeros(k)
    for i in range(k):
        for j in range(k):
            if i != j:
                dr = sum(hist[i, a] * hist[j, b] * cd[a, b] for a in range(c) for b in range(c))
                ds = ((reg.centroid[i] - reg.centroid[j]) ** 2).sum()
                want[i] += np.exp(-ds / 0.4) * reg.size[j] * dr
        want[i] *= np.exp(-9 * (reg.centre_dist[i] ** 2).sum())
    np.testing.assert_allclose(got, want, rtol=1e-4)
    # larger other regions contribute more: doubling one region's size raises the others
    bigger = reg._replace(size=reg.size * np.array([2, 1, 1, 1, 1]))
    assert (region_contrast(bigger, cd)[1:] > got[1:]).all()


def test_felzenszwalb_regions():
    img, obj = object_image()
    lab = img.astype(np.float32)  # any float image works; piecewise constant here
    flat = np.zeros_like(lab)
    flat[obj] = 100
    labels, count = felzenszwalb(flat, sigma=0)  # no blur: no intermediate boundary band
    assert count == 2 and labels.dtype == np.int32
    assert len(np.unique(labels[obj])) == 1 and labels[obj][0] != labels[0, 0]
    labels, count = felzenszwalb(
        lab + np.random.default_rng(0).normal(0, 20, lab.shape).astype(np.float32)
    )
    assert region_sizes(labels, count).min() >= 50  # min_size = 50 enforced


def test_rc_object_is_salient():
    img, obj = object_image()
    res = rc(img)
    sal, labels, palette, region_sal = res
    assert sal.shape == obj.shape and sal.dtype == np.float32
    assert 0 <= sal.min() and sal.max() <= 1
    assert labels.dtype == np.int32 and labels.max() + 1 == len(palette) == len(region_sal)
    assert palette.dtype == np.uint8 and palette.shape[1] == 3
    assert sal[obj].mean() > 0.8 and sal[~obj].mean() < 0.2
    # the object's regions carry the high per-region saliency
    inside = np.unique(labels[obj])
    outside = np.setdiff1d(np.unique(labels), inside)
    assert region_sal[inside].min() > 0.5 > region_sal[outside].max()


def test_rc_bad_and_edge_inputs():
    for img in (np.zeros((1, 1, 3), np.uint8), np.full((50, 60, 3), 77, np.uint8)):
        res = rc(img)
        assert res.saliency.shape == img.shape[:2] and not res.saliency.any()
    grey = object_image()[0].mean(axis=2).astype(np.uint8)
    assert rc(grey).saliency.shape == grey.shape
    huge = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (MAX_INPUT_PIXELS // 1000 + 1, 1000, 3))
    with pytest.raises(SslsegError, match="pixel limit"):
        rc(huge)


def test_rc_large_image_is_downscaled_internally():
    img, obj = object_image(60, 80)
    big = np.repeat(np.repeat(img, 20, axis=0), 20, axis=1)  # 1200 x 1600 = 1.9 Mpx
    res = rc(big, max_pixels=200_000)
    assert res.saliency.shape == res.labels.shape == big.shape[:2]
    assert res.labels.max() + 1 == len(res.palette)
    big_obj = np.repeat(np.repeat(obj, 20, axis=0), 20, axis=1)
    assert res.saliency[big_obj].mean() > 0.8
