"""Region-contrast (RC) saliency.

Cheng, Mitra, Huang, Torr, Hu: "Global Contrast based Salient Region Detection",
CVPR 2011 and IEEE TPAMI 37(3), 2015, Sec. 4 (RC). Defaults are those of the authors'
CmCode (``CmSaliencyRC::GetRC(img3f, 0.4, 50, 50, 0.5)``, ``BuildRegions``,
``RegionContrast``):

* regions: Felzenszwalb-Huttenlocher segmentation of the L*a*b* image, sigma = 0.5, k = 50,
  min_size = 50 (:func:`sslseg.saliency.regions.felzenszwalb`);
* region colour histograms over the HC quantisation (12 levels/channel, 95 % coverage);
* colour distance between regions D_r(r_i, r_j) = sum_k sum_l f(c_i,k) f(c_j,l) D(c_i,k, c_j,l)
  (L*a*b* distances, f = colour frequency inside the region);
* S(r_k) = sum_{i != k} exp(-D_s(r_k, r_i) / sigma_s^2) * |r_i| * D_r(r_k, r_i), with D_s the
  squared distance between region centroids in coordinates normalised to [0, 1] and
  sigma_s^2 = 0.4;
* centre prior (TPAMI version, always on in CmCode): S(r_k) *= exp(-9 (dx_k^2 + dy_k^2)), where
  dx_k, dy_k are the region's mean normalised horizontal / vertical distance to the image centre;
* region saliency min-max normalised to [0, 1], painted, blurred with a 3x3 Gaussian.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from sslseg.saliency._image import as_rgb
from sslseg.saliency.hc import colour_distances, normalise, quantise
from sslseg.saliency.regions import MIN_SIZE, SIGMA, K, felzenszwalb, mean_colours

SIGMA_S2 = 0.4  # sigma_s^2 of the spatial weight (CmCode ``sigmaDist = 0.4``)
CENTRE_PRIOR = 9.0  # CmCode: regSal[i] *= exp(-9.0 * (sqr(ad2c.x) + sqr(ad2c.y)))
MAX_PIXELS = 1_500_000  # larger inputs are processed on a downscaled copy (see ``rc``)
_BLOCK = 512  # rows of the region-contrast matrix computed at once (bounds memory)


class RCResult(NamedTuple):
    """Result of :func:`rc`.

    saliency: HxW float32 map in [0, 1]. labels: HxW int32 region labels 0..K-1 (the
    segmentation image: paint with ``palette[labels]``). palette: Kx3 uint8, the mean RGB
    colour of each region. region_saliency: (K,) float32 saliency of each region in [0, 1]
    (before the 3x3 blur) -- the salient object is the regions with high values, e.g.
    ``region_saliency >= 70/255``.
    """

    saliency: np.ndarray
    labels: np.ndarray
    palette: np.ndarray
    region_saliency: np.ndarray


class Regions(NamedTuple):
    """Per-region statistics used by the contrast (all coordinates normalised to [0, 1])."""

    size: np.ndarray  # (K,) pixels
    centroid: np.ndarray  # (K, 2) mean (x, y) / (W, H)
    centre_dist: np.ndarray  # (K, 2) mean |x - W/2| / W, mean |y - H/2| / H
    histogram: np.ndarray  # (K, C) colour frequencies, rows sum to 1


def region_stats(labels: np.ndarray, count: int, colour_idx: np.ndarray, n_colours: int) -> Regions:
    """Region sizes, centroids, mean distance to centre and colour histograms (``BuildRegions``)."""
    h, w = labels.shape
    flat = labels.ravel()
    size = np.bincount(flat, minlength=count).astype(np.float64)
    xs = np.tile(np.arange(w, dtype=np.float64), h)
    ys = np.repeat(np.arange(h, dtype=np.float64), w)
    denom = np.maximum(size, 1)
    cx = np.bincount(flat, weights=xs, minlength=count) / (denom * w)
    cy = np.bincount(flat, weights=ys, minlength=count) / (denom * h)
    ax = np.bincount(flat, weights=np.abs(xs - w / 2.0), minlength=count) / (denom * w)
    ay = np.bincount(flat, weights=np.abs(ys - h / 2.0), minlength=count) / (denom * h)
    hist = np.bincount(
        flat.astype(np.int64) * n_colours + colour_idx.ravel(), minlength=count * n_colours
    ).reshape(count, n_colours)
    hist = (hist / denom[:, None]).astype(np.float32)
    return Regions(size, np.stack([cx, cy], 1), np.stack([ax, ay], 1), hist)


def spatial_weight(centroids: np.ndarray, sigma_s2: float = SIGMA_S2) -> np.ndarray:
    """KxK exp(-D_s / sigma_s^2), D_s = squared distance of normalised centroids."""
    d = centroids[:, None, :] - centroids[None, :, :]
    return np.exp(-(d * d).sum(axis=2) / sigma_s2)


def region_contrast(
    regions: Regions,
    colour_dist: np.ndarray,
    sigma_s2: float = SIGMA_S2,
    centre_prior: bool = True,
) -> np.ndarray:
    """(K,) unnormalised region saliency (``CmSaliencyRC::RegionContrast``)."""
    n = regions.size.shape[0]
    hist = regions.histogram
    hd = hist @ colour_dist  # (K, C)
    sal = np.empty(n, dtype=np.float64)
    for s in range(0, n, _BLOCK):
        e = min(s + _BLOCK, n)
        dr = (hd[s:e] @ hist.T).astype(np.float64)  # colour distance D_r of rows s..e
        dr[np.arange(e - s), np.arange(s, e)] = 0.0  # a region does not contrast with itself
        ws = spatial_weight_block(regions.centroid[s:e], regions.centroid, sigma_s2)
        sal[s:e] = (ws * dr) @ regions.size
    if centre_prior:
        sal *= np.exp(-CENTRE_PRIOR * (regions.centre_dist**2).sum(axis=1))
    return sal


def spatial_weight_block(a: np.ndarray, b: np.ndarray, sigma_s2: float) -> np.ndarray:
    d = a[:, None, :] - b[None, :, :]
    return np.exp(-(d * d).sum(axis=2) / sigma_s2)


def rc(
    rgb: np.ndarray,
    sigma_s2: float = SIGMA_S2,
    seg_k: float = K,
    seg_min_size: int = MIN_SIZE,
    seg_sigma: float = SIGMA,
    centre_prior: bool = True,
    max_pixels: int = MAX_PIXELS,
) -> RCResult:
    """Region-contrast saliency map and the region segmentation it is built on.

    Args:
        rgb: uint8 HxWx3 RGB image (greyscale HxW is accepted and replicated).
        sigma_s2: sigma_s^2 of the spatial weighting, on coordinates normalised to [0, 1].
        seg_k, seg_min_size, seg_sigma: Felzenszwalb parameters (CmCode: 50, 50, 0.5).
        centre_prior: multiply by the TPAMI centre prior exp(-9 (dx^2 + dy^2)).
        max_pixels: images with more pixels are processed on an INTER_AREA-downscaled copy
            and the map / labels are resized back (bounds time and the KxK region matrices).

    Returns:
        :class:`RCResult` (saliency, labels, palette, region_saliency), all at the input size.
    """
    rgb = as_rgb(rgb)
    h, w = rgb.shape[:2]
    work = rgb
    if h * w > max_pixels:
        f = (max_pixels / (h * w)) ** 0.5
        size = (max(1, int(w * f)), max(1, int(h * f)))
        work = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    sal, labels, region_sal = _rc_core(work, sigma_s2, seg_k, seg_min_size, seg_sigma, centre_prior)
    if work is not rgb:
        sal = cv2.resize(sal, (w, h), interpolation=cv2.INTER_LINEAR)
        labels = cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST)
    palette = mean_colours(rgb, labels, region_sal.shape[0])
    return RCResult(sal, labels, palette, region_sal)


def _rc_core(
    rgb: np.ndarray,
    sigma_s2: float,
    seg_k: float,
    seg_min_size: int,
    seg_sigma: float,
    centre_prior: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lab = cv2.cvtColor(rgb.astype(np.float32) * np.float32(1 / 255), cv2.COLOR_RGB2Lab)
    labels, count = felzenszwalb(lab, seg_sigma, seg_k, seg_min_size)
    q = quantise(rgb)
    n_colours = q.lab.shape[0]
    if n_colours < 2 or count < 2:
        # one colour or one region: nothing stands out (CmCode returns an empty map here)
        return np.zeros(labels.shape, np.float32), labels, np.zeros(count, np.float32)
    regions = region_stats(labels, count, q.colour_index(), n_colours)
    raw = region_contrast(regions, colour_distances(q.lab), sigma_s2, centre_prior)
    region_sal = normalise(raw)
    sal = cv2.GaussianBlur(region_sal[labels], (3, 3), 0)
    return sal, labels, region_sal
