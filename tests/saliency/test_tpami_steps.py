"""Restored CmCode steps, each against a hand-computed case.

RC (TPAMI): border suppression (GetBorderReg), SmoothByHist, SmoothByRegion.
SaliencyCut (CutObjs): largest connected component, the next round's trimap (ExpandMask),
the border band and several GrabCut iterations per round.
"""

import cv2
import numpy as np
import pytest

from sslseg.saliency.cut import expand_trimap, largest_component, saliency_cut
from sslseg.saliency.rc import border_regions, rc, smooth_by_hist, smooth_by_region


def test_border_suppression_on_a_frame_shaped_region():
    # 50x50: label 0 is a 5-px frame along all four sides, 1 the centre, 2 a block that only
    # touches the top edge (it crosses the border band, it does not lie along it)
    labels = np.ones((50, 50), np.int32)
    labels[:5] = labels[-5:] = 0
    labels[:, :5] = labels[:, -5:] = 0
    labels[0:20, 20:30] = 2
    mask = border_regions(labels, 3)
    # Frame: mean x = 24.5; |x - 24.5| averages to vX = vY ~ 14.3 px (hand-computed below);
    # gaps round(50 * 0.02) = 1; top+bottom band pixels of label 0: 2 * 50 - 2 * 10 (label 2
    # owns 10 of the top row) = 90 ... left+right: 2 * 50 = 100.
    ys, xs = np.nonzero(labels == 0)
    vx = np.abs(xs - xs.mean()).mean()
    vy = np.abs(ys - ys.mean()).mean()
    lk = 100 / (4 * 1) / vy + 90 / (4 * 1) / vx
    assert lk / 0.4 > 1
    assert mask[labels == 0].all()
    # centre region: no band pixels, so only the 1-px band (none of its pixels) is masked
    assert not mask[labels == 1].any()
    # block touching the top: lk = 10 / 4 / vX(=2.5) = 1.0 > 0.4 ... but its first row is band;
    ys, xs = np.nonzero(labels == 2)
    lk2 = 10 / (4 * 1) / np.abs(xs - xs.mean()).mean()
    assert mask[labels == 2].all() == (lk2 / 0.4 > 1)
    assert mask[0].all() and mask[:, 0].all()  # the band itself is always masked


def test_border_suppression_keeps_a_region_that_only_dips_into_the_band():
    labels = np.zeros((100, 100), np.int32)
    labels[40:100, 30:70] = 1  # a tall object reaching the bottom edge
    # label 1: yb = 2 rows * 40 = 80 px in the bottom band; vX = 10 (uniform over 40 cols)
    # lk = 80 / (4 * 2) / 10 = 1.0 -> 1.0 / 0.4 > 1: CmCode counts it border background
    m = border_regions(labels, 2)
    assert m[labels == 1].all()
    # with a threshold above its likelihood (1.0) it is kept but for its band pixels
    m = border_regions(labels, 2, thr=1.5)
    assert not m[50, 50] and m[99, 50]


def test_smooth_by_region_takes_region_means_and_normalises():
    labels = np.array([[0, 0, 1, 1], [2, 2, 2, 2]], np.int32)
    sal = np.array([[0.2, 0.4, 0.9, 0.7], [0.1, 0.1, 0.1, 0.1]], np.float32)
    out, region = smooth_by_region(sal, labels, 3)
    # means 0.3, 0.8, 0.1 -> min-max (0.2, 1.0, 0.0)
    np.testing.assert_allclose(region, [2 / 7, 1.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(out[0], [2 / 7, 2 / 7, 1, 1], rtol=1e-6)


def test_smooth_by_hist_weights_nearest_colours_by_count():
    # three colours on a line in Lab: 0 at L=0, 1 at L=10, 2 at L=100; counts 2, 1, 1
    lab = np.array([[0, 0, 0], [10, 0, 0], [100, 0, 0]], np.float32)
    idx = np.array([[0, 0, 1, 2]], np.int32)
    sal = np.array([[0.0, 0.0, 1.0, 0.5]], np.float32)
    out = smooth_by_hist(sal, idx, lab, delta=0.1)  # n = max(round(0.3), 2) = 2 nearest
    # colour means (0, 1, 0.5) normalised (0, 1, 0.5). Colour 0: nearest {0 (d 0), 1 (d 10)},
    # T = 10: (10*2*0 + 0*1*1) / (10 * 3) = 0. Colour 1: {1, 0}: (10*1*1 + 0) / (10*3) = 1/3.
    # Colour 2: {2 (d 0), 1 (d 90)}, T = 90: (90*1*0.5 + 0) / (90 * 2) = 0.25.
    # min-max of (0, 1/3, 0.25) -> (0, 1, 0.75)
    np.testing.assert_allclose(out[0], [0, 0, 1, 0.75], atol=1e-6)


def test_rc_zeroes_the_border_and_keeps_a_central_object():
    rng = np.random.default_rng(0)
    img = np.clip(rng.normal(120, 5, (120, 160, 3)), 0, 255).astype(np.uint8)
    img[:, :] = np.clip(img + np.array([0, 30, 0]), 0, 255)
    img[40:80, 60:100] = (220, 40, 40)
    res = rc(img)
    assert res.saliency[60, 80] > 0.8
    assert res.saliency[0].max() < 0.2 and res.saliency[:, 0].max() < 0.2
    cvpr = rc(img, tpami=False)
    assert cvpr.saliency[60, 80] > 0.8


def test_largest_component_keeps_the_biggest_4_connected_blob():
    m = np.zeros((10, 10), bool)
    m[0:3, 0:3] = True  # 9 px
    m[5:9, 5:9] = True  # 16 px
    m[3, 3] = True  # touches the 9-px blob only diagonally: a separate 4-component
    out = largest_component(m)
    assert out.sum() == 16 and out[5:9, 5:9].all()
    assert not largest_component(np.zeros((4, 4), bool)).any()


def test_expand_trimap_rings_and_small_masks():
    fg = np.zeros((21, 21), bool)
    fg[5:16, 5:16] = True  # 11x11 square
    tri = expand_trimap(fg, 2)
    # eroded by 2 -> 7x7 fixed foreground; dilated by 2 -> 15x15; ring probable foreground
    assert (tri == cv2.GC_FGD).sum() == 49
    assert ((tri == cv2.GC_FGD) | (tri == cv2.GC_PR_FGD)).sum() == 225
    assert (tri == cv2.GC_BGD).sum() == 21 * 21 - 225
    # an eroded mask below min_eroded pixels: the mask itself is the fixed foreground
    tri = expand_trimap(fg, 2, min_eroded=50)
    assert (tri == cv2.GC_FGD).sum() == 121


def scene(h=120, w=160, seed=0):
    rng = np.random.default_rng(seed)
    img = np.empty((h, w, 3), np.float64)
    img[:] = (60, 110, 70)
    img += rng.normal(0, 8, img.shape)
    obj = np.zeros((h, w), bool)
    obj[30:90, 50:110] = True
    img[obj] = np.array((230, 150, 40)) + rng.normal(0, 8, (int(obj.sum()), 3))
    return np.clip(img, 0, 255).astype(np.uint8), obj


def test_cut_rounds_drop_a_detached_false_blob_and_keep_the_border_band():
    img, obj = scene()
    sal = np.zeros(obj.shape, np.float32)
    sal[obj] = 0.9
    # a false salient blob of the object's colour, away from it: the largest component wins
    img[5:20, 5:20] = (230, 150, 40)
    sal[5:20, 5:20] = 0.9
    mask = saliency_cut(img, sal, work_side=None)
    assert not mask[5:20, 5:20].any()
    assert (mask & obj).sum() / (mask | obj).sum() > 0.95
    kept = saliency_cut(img, sal, work_side=None, largest=False, border=0.0)
    assert kept[8:18, 8:18].all()


def test_cut_border_band_is_background():
    img, obj = scene()
    obj2 = np.zeros_like(obj)
    obj2[0:90, 50:110] = True  # object touching the top edge
    img[obj2] = img[obj][0]
    sal = obj2.astype(np.float32)
    m = saliency_cut(img, sal, work_side=None, border=0.02)  # CmCode's band, opted in
    band = round(0.02 * 120)
    assert not m[:band].any() and m[band:90, 60:100].all()
    assert saliency_cut(img, sal, work_side=None)[0, 60:100].all()  # default: no band


@pytest.mark.parametrize("iters", [1, 8])
def test_cut_grabcut_iterations_per_round(iters):
    img, obj = scene(seed=2)
    sal = np.zeros(obj.shape, np.float32)
    sal[30:60, 50:110] = 0.9  # only the top half is salient
    m = saliency_cut(img, sal, work_side=None, grabcut_iters=iters)
    assert (m & obj).sum() / (m | obj).sum() > 0.9


def test_border_suppression_frame_by_hand():
    # 10x10: label 0 the 1-px outer ring (36 px), label 1 the 8x8 centre; ratio 0.1 -> 1-px band.
    labels = np.ones((10, 10), np.int32)
    labels[0] = labels[-1] = labels[:, 0] = labels[:, -1] = 0
    # Ring: mean x = 4.5; sum |x - 4.5| = 2 rows * 25 + 16 side pixels * 4.5 = 122, so
    # vX = vY = 122 / 36. In the bands: yb = 20 (rows 0, 9), xb = 20 (columns 0, 9).
    # lk = 20 / (4 * 1) / (122/36) + 20 / (4 * 1) / (122/36) = 360 / 122 = 2.95 > 0.4
    m = border_regions(labels, 2, ratio=0.1, thr=0.4)
    assert m[labels == 0].all() and not m[labels == 1].any()
    # 20x20 with a 2-px ring (144 px), 1-px band (ratio 0.05): the ring's inner half lies
    # outside the band, so only the likelihood test masks it. Rows 0, 1, 18, 19 give
    # sum |x - 9.5| = 4 * 100, the 64 side pixels 16 * (9.5 + 8.5 + 8.5 + 9.5) = 576:
    # vX = vY = 976 / 144; yb = xb = 40, so lk = 2 * 40 / 4 / (976 / 144) = 2880 / 976.
    wide = np.ones((20, 20), np.int32)
    wide[:2] = wide[-2:] = wide[:, :2] = wide[:, -2:] = 0
    lk = 2880 / 976
    inner = wide == 0
    inner[0] = inner[-1] = inner[:, 0] = inner[:, -1] = False  # ring pixels off the band
    assert inner.sum() == 144 - 76
    assert border_regions(wide, 2, 0.05, thr=0.4)[inner].all()
    assert border_regions(wide, 2, 0.05, thr=lk - 1e-6)[inner].all()
    kept = border_regions(wide, 2, 0.05, thr=lk + 1e-6)
    assert not kept[inner].any() and kept[0].all() and not kept[wide == 1].any()


class _GrowingGrabCut:
    """Stand-in for GrabCut: each call grows the foreground by 1 px where the trimap allows
    (fixed labels are never changed, as in GrabCut); records the trimaps it was given."""

    calls: list[np.ndarray] = []

    def __init__(self, img: np.ndarray) -> None:
        pass

    def __call__(self, mask: np.ndarray) -> bool:
        _GrowingGrabCut.calls.append(mask.copy())
        fg = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
        grown = cv2.dilate(fg.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        mask[grown & (mask == cv2.GC_PR_BGD)] = cv2.GC_PR_FGD
        return True


def test_trimap_rounds_by_hand(monkeypatch):
    from sslseg.saliency import cut

    monkeypatch.setattr(cut, "_GrabCut", _GrowingGrabCut)
    _GrowingGrabCut.calls = []
    img = np.zeros((60, 60, 3), np.uint8)
    sal = np.zeros((60, 60), np.float32)
    sal[25:35, 25:35] = 0.9  # the object, 100 px
    sal[50:53, 50:53] = 0.9  # a detached 9-px blob
    mask = saliency_cut(img, sal, work_side=None, grabcut_iters=1)
    # Round 1 (threshold trimap: 109 px probable foreground, no fixed labels) grows the
    # square to 12x12 at 24:36 and the blob to 5x5; the largest component is the square
    # (changed 44 + 9 = 53 >= 10 px). Its trimap: eroded by 5 = 2x2 < 50 px, so all 144 px
    # are fixed foreground; dilated by 5 = 22x22 at 19:41 probable foreground; rest fixed
    # background. Round 2: no probable background left, the result is the 22x22 (484 px).
    # Trimap: eroded 12x12 (144 px, >= 50) fixed, dilated 32x32 at 14:46. Round 3: 32x32;
    # trimap: eroded 22x22 (484) fixed, dilated 42x42 at 9:51. Round 4 (the last): 42x42.
    calls = _GrowingGrabCut.calls
    assert len(calls) == 4
    assert not (calls[0] == cv2.GC_FGD).any() and not (calls[0] == cv2.GC_BGD).any()
    assert (calls[0] == cv2.GC_PR_FGD).sum() == 109
    for r, fixed, union in ((1, 144, 484), (2, 144, 1024), (3, 484, 1764)):
        tri = calls[r]
        assert (tri == cv2.GC_FGD).sum() == fixed
        assert ((tri == cv2.GC_FGD) | (tri == cv2.GC_PR_FGD)).sum() == union
        assert (tri == cv2.GC_BGD).sum() == 60 * 60 - union
    assert (calls[1][50:53, 50:53] == cv2.GC_BGD).all()  # the blob was dropped in round 1
    expected = np.zeros((60, 60), bool)
    expected[9:51, 9:51] = True
    np.testing.assert_array_equal(mask, expected)


def test_trimap_rounds_stop_when_fewer_than_10_px_change(monkeypatch):
    from sslseg.saliency import cut

    class Still(_GrowingGrabCut):
        def __call__(self, mask: np.ndarray) -> bool:
            _GrowingGrabCut.calls.append(mask.copy())
            return True  # GrabCut keeps every label

    monkeypatch.setattr(cut, "_GrabCut", Still)
    _GrowingGrabCut.calls = []
    img = np.zeros((40, 40, 3), np.uint8)
    sal = np.zeros((40, 40), np.float32)
    sal[10:20, 10:20] = 0.9
    sal[30:33, 30:33] = 0.9
    # round 1 drops the 9-px blob (largest component): 9 < 10 px changed, so it stops there
    mask = saliency_cut(img, sal, work_side=None)
    assert len(_GrowingGrabCut.calls) == 1
    assert mask.sum() == 100 and mask[10:20, 10:20].all()
    # with the 10 x 10 blob it is 100 px of change: a second round runs
    sal[28:38, 28:38] = 0.0
    sal[26:36, 26:36] = 0.9  # 100 px too: equal areas, the first label wins
    _GrowingGrabCut.calls = []
    saliency_cut(img, sal, work_side=None)
    assert len(_GrowingGrabCut.calls) >= 2
