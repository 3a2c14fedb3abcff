"""SaliencyCut: GrabCut initialised from a saliency map and refined iteratively.

Cheng et al., "Global Contrast based Salient Region Detection", CVPR 2011 Sec. 5 and TPAMI
2015 Sec. 5: the map is binarised with a fixed threshold (70 of 255 in the papers); pixels
below it are background and the rest unknown (probable foreground) for GrabCut (Rother et al.,
SIGGRAPH 2004, OpenCV ``cv2.grabCut``). After each GrabCut the segmentation is dilated and
eroded to build the next trimap: outside the dilated mask is background, inside the eroded
mask is foreground, the ring between them is unknown. The authors' CmCode (``CmSalCut``) runs
at most 4 such rounds and stops early when the mask no longer changes; pixels within 2 % of
the image border are never taken as seed foreground (the ``border1u`` band of ``CutObjs``).

GrabCut's cost grows with the pixel count, so the cut runs on a copy whose longer side is at
most ``work_side`` pixels (INTER_AREA) and the mask is resized back with bilinear
interpolation of the 0/1 mask and a 0.5 threshold. ``work_side=None`` cuts at full size.
"""

from __future__ import annotations

import cv2
import numpy as np

from sslseg.errors import SslsegError
from sslseg.saliency._image import as_rgb

THRESHOLD = 70 / 255  # fixed binarisation threshold of the papers
ITERATIONS = 4  # outer dilate/erode rounds (CmCode ``outerIter = 4``)
GRABCUT_ITERS = 2  # cv2.grabCut iterations per round
WORK_SIDE = 256  # longer side of the copy GrabCut runs on
BORDER = 0.02  # CmCode: border band of 2 % of width / height excluded from seed foreground


def _trimap_from_mask(fg: np.ndarray, radius: int) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    fg8 = fg.astype(np.uint8)
    dil = cv2.dilate(fg8, kernel)
    ero = cv2.erode(fg8, kernel)
    tri = np.full(fg.shape, cv2.GC_BGD, dtype=np.uint8)
    tri[dil > 0] = cv2.GC_PR_BGD
    tri[fg] = cv2.GC_PR_FGD
    tri[ero > 0] = cv2.GC_FGD
    return tri


def _grabcut(img: np.ndarray, trimap: np.ndarray, iters: int) -> np.ndarray | None:
    """One GrabCut run on a trimap; None when the trimap lacks foreground or background."""
    fg_seed = (trimap == cv2.GC_FGD) | (trimap == cv2.GC_PR_FGD)
    if not fg_seed.any() or fg_seed.all():
        return None
    bgd = np.zeros((1, 65), np.float64)
    fgd = np.zeros((1, 65), np.float64)
    mask = trimap.copy()
    try:
        cv2.grabCut(img, mask, None, bgd, fgd, iters, cv2.GC_INIT_WITH_MASK)
    except cv2.error:  # e.g. too few distinct samples for a GMM component
        return None
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
) -> np.ndarray:
    """Binary salient-object mask from an image and its saliency map (SaliencyCut).

    Args:
        rgb: uint8 HxWx3 RGB image (greyscale is accepted).
        saliency: HxW float map in [0, 1] (HC or RC; the papers use RC).
        threshold: fixed threshold in [0, 1] of the initial binarisation (70/255).
        iterations: maximum dilate/erode refinement rounds (4, as in CmCode).
        grabcut_iters: ``cv2.grabCut`` iterations per round.
        work_side: longer side of the downscaled copy GrabCut runs on (None: full size).
        radius: dilation / erosion radius in working pixels; default ~2 % of the longer side.
        border: width of the image-border band (fraction of each side) that is kept out of the
            seed foreground, as in CmCode; 0 disables it.

    Returns:
        HxW bool mask, True on the salient object; all False when nothing exceeds the
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
    img = np.ascontiguousarray(img[:, :, ::-1])  # GrabCut's GMMs do not care, OpenCV is BGR
    wh, ww = sal.shape
    if radius is None:
        radius = max(2, round(0.02 * max(wh, ww)))
    band = np.zeros((wh, ww), bool)
    bh, bw = round(border * wh), round(border * ww)
    if bh or bw:
        band[:] = True
        band[bh : wh - bh, bw : ww - bw] = False

    fg = (sal >= threshold) & ~band
    trimap = np.where(fg, cv2.GC_PR_FGD, cv2.GC_BGD).astype(np.uint8)
    for _ in range(max(1, iterations)):
        new = _grabcut(img, trimap, grabcut_iters)
        if new is None:
            break
        changed = int(np.count_nonzero(new != fg))
        fg = new
        if changed < 10:
            break
        trimap = _trimap_from_mask(fg, radius)
        trimap[band & (trimap != cv2.GC_FGD)] = cv2.GC_BGD
    if fg.shape != (h, w):
        up = cv2.resize(fg.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        fg = up >= 0.5
    return fg
