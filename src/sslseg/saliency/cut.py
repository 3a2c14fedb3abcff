"""SaliencyCut: GrabCut initialised from a saliency map and refined iteratively.

Cheng et al., "Global Contrast based Salient Region Detection", CVPR 2011 Sec. 5 and TPAMI
2015 Sec. 5, after the authors' CmCode (``CmSalCut::CutObjs``, ``ExpandMask``) on OpenCV's
GrabCut (Rother et al., SIGGRAPH 2004; ``cv2.grabCut``):

* with ``border`` > 0 (CmCode: 0.02; off by default, see ``BORDER``) a band along the image
  border is kept background;
* initial trimap (``init``): ``"threshold"`` (default) -- pixels at or above 70/255 probable
  foreground, the rest probable background; ``"cmcode"`` -- CmCode's: the map blurred 9x9 and
  min-max normalised, below 0.1 fixed background, above 0.9 fixed foreground, the rest
  unknown (split at 0.5 into probable fore/background, OpenCV having no soft labels);
* up to 4 rounds; in each, GrabCut iterates until fewer than 50 pixels change (at most
  ``grabcut_iters`` times: CmCode 8, here 1 by default, see ``GRABCUT_ITERS``), only the
  largest 4-connected component of the result is kept, and the next trimap is built from
  it: inside the mask eroded by 5 pixels fixed foreground, outside the mask dilated by 5
  pixels fixed background, the ring between unknown (probable foreground); rounds stop once
  fewer than 10 pixels change. Pixel counts and radii are
  CmCode's at the image's own resolution, scaled to the working copy.

GrabCut's cost grows with the pixel count, so the cut runs on a copy whose longer side is at
most ``work_side`` pixels (INTER_AREA) and the mask is resized back with bilinear
interpolation of the 0/1 mask and a 0.5 threshold. ``work_side=None`` cuts at full size. The
default, 224, is the knee of the speed-quality curve over the working side on the tuning set
(docs/figures/saliency_curve.png, docs/results/saliency-curve-tuning.txt).
Measured choices: docs/saliency.md.
"""

from __future__ import annotations

import cv2
import numpy as np

from sslseg.errors import SslsegError
from sslseg.saliency._image import as_rgb

THRESHOLD = 70 / 255  # fixed binarisation threshold of the papers
ITERATIONS = 4  # outer dilate/erode rounds (CmCode ``outerIter = 4``)
GRABCUT_ITERS = 1  # GrabCut iterations per round (CmCode: up to 8; measured, docs/saliency.md)
BACKGROUND_BELOW = 0.0  # "threshold" init: saliency below this fixed background (0: none)
WORK_SIDE = 224  # longer side of GrabCut's copy: the curve's knee (docs/saliency.md)
# CmCode ``CutObjs`` keeps a 2 % border band background; off here: on held-out images it lost
# 0.035 IoU (448 Pet) and 0.087 (PV01, panels touch the edge) for +0.008 on the tuning set
BORDER = 0.0
INIT = "threshold"
RADIUS_PX = 5  # CmCode ``ExpandMask(..., 5)``: 5 dilations / erosions of a 3x3 square
REFINE_CHANGE_PX = 50  # CmCode: GrabCut iterations go on while more than 50 pixels change
ROUND_CHANGE_PX = 10  # CmCode: rounds stop once fewer than 10 pixels change
SMALL_ERODED_PX = 50  # CmCode: an eroded mask this small is replaced by the mask itself


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected component of a bool mask (CmCode ``GetNZRegionsLS``)."""
    n, lab, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=4)
    if n <= 2:  # empty, or already one component
        return mask.astype(bool)
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return lab == best


def expand_trimap(fg: np.ndarray, radius: int, min_eroded: int = 1) -> np.ndarray:
    """Next round's GrabCut trimap from a mask (CmCode ``ExpandMask`` + ``initialize``).

    Inside the mask eroded by ``radius`` (square kernel): fixed foreground; outside the mask
    dilated by ``radius``: fixed background; between: probable foreground. When the eroded
    mask has fewer than ``min_eroded`` pixels the mask itself is the fixed foreground.
    """
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    fg8 = fg.astype(np.uint8)
    dil = cv2.dilate(fg8, kernel) > 0
    ero = cv2.erode(fg8, kernel) > 0
    if np.count_nonzero(ero) < min_eroded:
        ero = fg.astype(bool)
    tri = np.full(fg.shape, cv2.GC_BGD, dtype=np.uint8)
    tri[dil] = cv2.GC_PR_FGD
    tri[ero] = cv2.GC_FGD
    return tri


def initial_trimap(
    sal: np.ndarray, init: str, threshold: float, background_below: float
) -> np.ndarray:
    """First GrabCut trimap from the (working-size) saliency map; see the module docstring."""
    if init == "threshold":
        tri = np.where(sal >= threshold, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
        tri[sal < background_below] = cv2.GC_BGD
        return tri
    if init == "cmcode":
        # CmCode's demo blurs the RC map 9x9 and renormalises before CutObjs(sal, 0.1, 0.9)
        s = cv2.GaussianBlur(sal, (9, 9), 0)
        lo, hi = float(s.min()), float(s.max())
        s = (s - lo) / (hi - lo) if hi > lo else np.zeros_like(s)
        tri = np.where(s >= 0.5, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
        tri[s < 0.1] = cv2.GC_BGD
        tri[s > 0.9] = cv2.GC_FGD
        return tri
    raise SslsegError(f"init: '{init}' is not one of threshold, cmcode")


class _GrabCut:
    """cv2.grabCut on one image, keeping the colour GMMs between iterations and rounds.

    The first call learns the GMMs from the trimap (k-means, GC_INIT_WITH_MASK); later calls
    continue from them (GC_EVAL, which still re-learns them from the current labels but skips
    the k-means).
    """

    def __init__(self, img: np.ndarray) -> None:
        self.img = img
        self.bgd = np.zeros((1, 65), np.float64)
        self.fgd = np.zeros((1, 65), np.float64)
        self.fresh = True

    def __call__(self, mask: np.ndarray) -> bool:
        """One GrabCut iteration on ``mask`` in place; False when it cannot run."""
        fg_seed = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
        if not fg_seed.any() or fg_seed.all():
            return False
        mode = cv2.GC_INIT_WITH_MASK if self.fresh else cv2.GC_EVAL
        try:
            cv2.grabCut(self.img, mask, None, self.bgd, self.fgd, 1, mode)
        except cv2.error:  # e.g. too few distinct samples for a GMM component
            return False
        self.fresh = False
        return True


def _foreground(mask: np.ndarray) -> np.ndarray:
    return (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)


def saliency_cut(
    rgb: np.ndarray,
    saliency: np.ndarray,
    threshold: float = THRESHOLD,
    iterations: int = ITERATIONS,
    grabcut_iters: int = GRABCUT_ITERS,
    work_side: int | None = WORK_SIDE,
    radius: int | None = None,
    border: float = BORDER,
    background_below: float = BACKGROUND_BELOW,
    init: str = INIT,
    largest: bool = True,
) -> np.ndarray:
    """Binary salient-object mask from an image and its saliency map (SaliencyCut).

    Args:
        rgb: uint8 HxWx3 RGB image (greyscale is accepted).
        saliency: HxW float map in [0, 1] (HC or RC; the papers use RC).
        threshold: fixed threshold in [0, 1] of the initial binarisation (70/255).
        iterations: maximum GrabCut + dilate/erode rounds (4, as in CmCode).
        grabcut_iters: most GrabCut iterations per round (CmCode: 8; default 1); a round's
            iterations stop once fewer than 50 pixels (full-size equivalent) change.
        work_side: longer side of the downscaled copy GrabCut runs on (None: full size).
        radius: dilation / erosion radius in working pixels; default CmCode's 5 pixels at
            full size, scaled to the working copy.
        border: width of the image-border band (fraction of each side) kept out of the
            foreground, as CmCode's ``border1u`` (0.02); 0 disables it.
        background_below: ``init="threshold"``: initial pixels with saliency below this are
            fixed background, those between it and ``threshold`` probable background.
        init: "threshold" or "cmcode", the initial trimap (module docstring).
        largest: keep only the largest 4-connected component after every round (CmCode).

    Returns:
        HxW bool mask, True on the salient object; all False when nothing reaches the
        threshold.
    """
    rgb = as_rgb(rgb)
    saliency = np.asarray(saliency, dtype=np.float32)
    h, w = rgb.shape[:2]
    if saliency.shape != (h, w):
        raise SslsegError(f"saliency: shape {saliency.shape} does not match image {(h, w)}")
    if not 0.0 <= threshold <= 1.0:
        raise SslsegError(f"threshold: {threshold} is outside [0, 1]")
    initial = saliency >= threshold
    if min(h, w) < 8 or not initial.any() or initial.all():
        return initial  # too small for GrabCut's GMMs, or nothing to separate

    img, sal = rgb, saliency
    if work_side is not None and max(h, w) > work_side:
        f = work_side / max(h, w)
        size = (max(8, round(w * f)), max(8, round(h * f)))
        img = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        sal = cv2.resize(saliency, size, interpolation=cv2.INTER_AREA)
    img = np.ascontiguousarray(img[:, :, ::-1])  # OpenCV's channel order (GMMs do not care)
    wh, ww = sal.shape
    area = wh * ww / (h * w)  # working pixels per full-size pixel
    if radius is None:
        radius = max(1, round(RADIUS_PX * (area**0.5)))
    refine_change = max(1, round(REFINE_CHANGE_PX * area))
    round_change = max(1, round(ROUND_CHANGE_PX * area))
    min_eroded = max(1, round(SMALL_ERODED_PX * area))
    band = np.zeros((wh, ww), bool)
    bh, bw = round(border * wh), round(border * ww)
    if bh or bw:
        band[:] = True
        band[bh : wh - bh, bw : ww - bw] = False

    mask = initial_trimap(sal, init, threshold, background_below)
    mask[band] = cv2.GC_BGD
    fg = _foreground(mask)
    # GrabCut's k-means draws from OpenCV's global RNG: seed it so a mask depends only on
    # the inputs (results can be cached by content hash).
    cv2.setRNGSeed(0)
    grabcut = _GrabCut(img)
    for _ in range(max(1, iterations)):
        prev = fg
        seg = _foreground(mask)
        ran = False
        for _ in range(max(1, grabcut_iters)):
            if not grabcut(mask):
                break
            ran = True
            new = _foreground(mask)
            changed = int(np.count_nonzero(new != seg))
            seg = new
            if changed <= refine_change:
                break
        if not ran:
            break
        fg = largest_component(seg) if largest else seg
        if not fg.any():
            break
        if int(np.count_nonzero(fg != prev)) < round_change:
            break
        mask = expand_trimap(fg, radius, min_eroded)
        mask[band] = cv2.GC_BGD
    if fg.shape != (h, w):
        up = cv2.resize(fg.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        fg = up >= 0.5
    return fg
