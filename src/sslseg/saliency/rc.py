"""Region-contrast (RC) saliency.

Cheng, Mitra, Huang, Torr, Hu: "Global Contrast based Salient Region Detection",
CVPR 2011 and IEEE TPAMI 37(3), 2015, Sec. 4 (RC). Defaults are those of the TPAMI version of
the authors' CmCode (``CmSaliencyRC::GetRC(img3f, 0.4, 50, 200, 0.5)``, ``BuildRegions``,
``RegionContrast``, ``GetBorderReg``, ``SmoothByHist``, ``SmoothByRegion``):

* regions: Felzenszwalb-Huttenlocher segmentation of the L*a*b* image, sigma = 0.5, k = 50,
  min_size = 200 (the CVPR 2011 code used 50; :func:`sslseg.saliency.regions.felzenszwalb`);
* region colour histograms over the HC quantisation (12 levels/channel, 95 % coverage);
* colour distance between regions D_r(r_i, r_j) = sum_k sum_l f(c_i,k) f(c_j,l) D(c_i,k, c_j,l)
  (L*a*b* distances, f = colour frequency inside the region);
* S(r_k) = sum_{i != k} exp(-D_s(r_k, r_i) / sigma_s^2) * |r_i| * D_r(r_k, r_i), with D_s the
  squared distance between region centroids in coordinates normalised to [0, 1] and
  sigma_s^2 = 0.4;
* centre prior (TPAMI version, always on in CmCode): S(r_k) *= exp(-9 (dx_k^2 + dy_k^2)), where
  dx_k, dy_k are the region's mean normalised horizontal / vertical distance to the image centre;
* region saliency min-max normalised to [0, 1] and painted;
* border suppression (``GetBorderReg(labels, 0.02, 0.4)``): the pixels of a 2 % band along
  each side, and every region that lies along the border rather than across it, are set to 0
  (:func:`border_regions`);
* ``SmoothByHist(delta=0.1)``: each colour's mean pixel saliency, smoothed over its 10 % nearest
  colours weighted by their pixel counts (:func:`smooth_by_hist`);
* ``SmoothByRegion``: each region takes its mean saliency, min-max normalised
  (:func:`smooth_by_region`); border suppression again; a 3x3 Gaussian blur.

``tpami=False`` skips the last three steps (the CVPR 2011 map; min-max normalised and blurred).
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from sslseg.saliency._image import as_rgb
from sslseg.saliency.hc import colour_distances, normalise, quantise
from sslseg.saliency.regions import SIGMA, K, felzenszwalb, mean_colours

SIGMA_S2 = 0.4  # sigma_s^2 of the spatial weight (CmCode ``sigmaDist = 0.4``)
SEG_MIN_SIZE = 200  # TPAMI CmCode ``GetRC(img3f, 0.4, 50, 200, 0.5)`` (CVPR code: 50)
BORDER_RATIO = 0.02  # GetBorderReg band: 2 % of each side
BORDER_THR = 0.4  # GetBorderReg likelihood threshold as GetRC calls it (header default 0.3)
HIST_DELTA = 0.1  # SmoothByHist: smooth over the 10 % nearest colours
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


def border_regions(
    labels: np.ndarray, count: int, ratio: float = BORDER_RATIO, thr: float = BORDER_THR
) -> np.ndarray:
    """HxW bool mask of the border background (CmCode ``CmSaliencyRC::GetBorderReg``).

    With bands of ``round(ratio * side)`` pixels along each side, a region is border
    background when xb / (4 hGap) / vY + yb / (4 wGap) / vX > thr, where xb / yb are its pixels
    in the left+right / top+bottom bands and vX / vY its mean absolute deviation from its mean
    x / y (pixels): a region stretched along a side, not one that just touches it. The band
    pixels themselves are always in the mask.
    """
    h, w = labels.shape
    flat = labels.ravel()
    n = np.maximum(np.bincount(flat, minlength=count), 1).astype(np.float64)
    xs = np.tile(np.arange(w, dtype=np.float64), h)
    ys = np.repeat(np.arange(h, dtype=np.float64), w)
    mx = np.bincount(flat, weights=xs, minlength=count) / n
    my = np.bincount(flat, weights=ys, minlength=count) / n
    eps = 1e-200  # CmCode's EPS: keeps a one-column region's vX from dividing by zero
    vx = np.bincount(flat, weights=np.abs(xs - mx[flat]), minlength=count) / n + eps
    vy = np.bincount(flat, weights=np.abs(ys - my[flat]), minlength=count) / n + eps
    wgap, hgap = round(w * ratio), round(h * ratio)
    band = np.zeros((h, w), bool)
    lk = np.zeros(count, np.float64)
    if hgap:  # top and bottom bands (corners counted in both, as in CmCode)
        tb = np.concatenate([labels[:hgap].ravel(), labels[h - hgap :].ravel()])
        yb = np.bincount(tb, minlength=count)
        if wgap:
            lk += yb / (4.0 * wgap) / vx
        band[:hgap] = band[h - hgap :] = True
    if wgap:
        lr = np.concatenate([labels[:, :wgap].ravel(), labels[:, w - wgap :].ravel()])
        xb = np.bincount(lr, minlength=count)
        if hgap:
            lk += xb / (4.0 * hgap) / vy
        band[:, :wgap] = band[:, w - wgap :] = True
    return (lk / thr > 1)[labels] | band


def smooth_by_hist(
    sal: np.ndarray, colour_idx: np.ndarray, lab: np.ndarray, delta: float = HIST_DELTA
) -> np.ndarray:
    """CmCode ``SmoothByHist``: pixel saliency replaced by its colour's smoothed saliency.

    A colour's saliency is the mean over its pixels, min-max normalised; it is then smoothed
    over its n = max(round(delta K), 2) nearest colours c_j (itself included):
    S'(c) = sum_j (T - D(c, c_j)) w_j S(c_j) / (T sum_j w_j), T = sum_j D(c, c_j), w_j the
    pixel count of c_j; the result is min-max normalised again.
    """
    k = lab.shape[0]
    flat = colour_idx.ravel()
    counts = np.bincount(flat, minlength=k).astype(np.float64)
    colour_sal = normalise(
        np.bincount(flat, weights=sal.ravel(), minlength=k) / np.maximum(counts, 1)
    )
    if k >= 2:
        dist = colour_distances(lab)
        m = min(max(round(k * delta), 2), k)
        nearest = np.argsort(dist, axis=1, kind="stable")[:, :m]
        d = np.take_along_axis(dist, nearest, axis=1).astype(np.float64)
        total = d.sum(axis=1)
        wt = counts[nearest]
        num = ((total[:, None] - d) * wt * colour_sal[nearest]).sum(axis=1)
        den = total * wt.sum(axis=1)
        # T = 0 only when the m nearest colours coincide: keep the colour's own value
        colour_sal = normalise(np.where(den > 0, num / np.where(den > 0, den, 1), colour_sal))
    return colour_sal.astype(np.float32)[colour_idx]


def smooth_by_region(
    sal: np.ndarray, labels: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """CmCode ``SmoothByRegion``: every region takes its mean saliency, min-max normalised.

    Returns (HxW map, (K,) region values).
    """
    flat = labels.ravel()
    n = np.maximum(np.bincount(flat, minlength=count), 1)
    region = normalise(np.bincount(flat, weights=sal.ravel(), minlength=count) / n)
    return region[labels], region


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
    seg_min_size: int = SEG_MIN_SIZE,
    seg_sigma: float = SIGMA,
    centre_prior: bool = True,
    max_pixels: int = MAX_PIXELS,
    tpami: bool = True,
) -> RCResult:
    """Region-contrast saliency map and the region segmentation it is built on.

    Args:
        rgb: uint8 HxWx3 RGB image (greyscale HxW is accepted and replicated).
        sigma_s2: sigma_s^2 of the spatial weighting, on coordinates normalised to [0, 1].
        seg_k, seg_min_size, seg_sigma: Felzenszwalb parameters (TPAMI CmCode: 50, 200, 0.5).
        centre_prior: multiply by the TPAMI centre prior exp(-9 (dx^2 + dy^2)).
        tpami: border suppression, SmoothByHist and SmoothByRegion (TPAMI CmCode); False
            gives the CVPR 2011 map.
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
    sal, labels, region_sal = _rc_core(
        work, sigma_s2, seg_k, seg_min_size, seg_sigma, centre_prior, tpami
    )
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
    tpami: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lab = cv2.cvtColor(rgb.astype(np.float32) * np.float32(1 / 255), cv2.COLOR_RGB2Lab)
    labels, count = felzenszwalb(lab, seg_sigma, seg_k, seg_min_size)
    q = quantise(rgb)
    n_colours = q.lab.shape[0]
    if n_colours < 2 or count < 2:
        # one colour or one region: nothing stands out (CmCode returns an empty map here)
        return np.zeros(labels.shape, np.float32), labels, np.zeros(count, np.float32)
    colour_idx = q.colour_index()
    regions = region_stats(labels, count, colour_idx, n_colours)
    raw = region_contrast(regions, colour_distances(q.lab), sigma_s2, centre_prior)
    region_sal = normalise(raw)
    sal = region_sal[labels]
    if tpami:
        border = border_regions(labels, count)
        sal[border] = 0.0
        sal = smooth_by_hist(sal, colour_idx, q.lab)
        sal, region_sal = smooth_by_region(sal, labels, count)
        sal[border] = 0.0
        # regions wholly in the border background carry 0, as their pixels do
        inside = np.bincount(labels[~border], minlength=count) > 0
        region_sal = np.where(inside, region_sal, 0.0).astype(np.float32)
    sal = cv2.GaussianBlur(sal, (3, 3), 0)
    return sal, labels, region_sal
