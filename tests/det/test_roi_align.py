"""The sparse RoIAlign gives torchvision's values and gradients (it only changes the speed)."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torchvision.ops import MultiScaleRoIAlign as TorchvisionPooler
from torchvision.ops import roi_align

from sslseg.det.model import LEVELS, build_mask_rcnn
from sslseg.det.roi_align import MultiScaleRoIAlign, roi_align_levels


def one_level(features: torch.Tensor, rois: torch.Tensor, size, scale, ratio) -> torch.Tensor:
    levels = torch.zeros(len(rois), dtype=torch.long)
    return roi_align_levels([features], rois, levels, [scale], size, ratio)


def test_hand_computed_bin_with_a_border_sample() -> None:
    # f(y, x) = 2y + x on a 2 x 2 map; the roi (0, 0)-(2, 2) in one bin samples y, x at 0.5
    # and 1.5, and 1.5 lies past the last row / column, so it takes the border (1):
    # mean of 2*0.5+0.5, 2*0.5+1, 2*1+0.5, 2*1+1 = 2.25
    features = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    rois = torch.tensor([[0.0, 0.0, 0.0, 2.0, 2.0]])
    assert one_level(features, rois, (1, 1), 1.0, 2).item() == pytest.approx(2.25)
    # a roi entirely left of x = -1 samples nothing: 0, as torchvision
    far = torch.tensor([[0.0, -9.0, 0.0, -5.0, 1.0]])
    assert one_level(features, far, (1, 1), 1.0, 2).item() == 0.0


@pytest.mark.parametrize("ratio", [1, 2, 3])
@pytest.mark.parametrize("size", [(7, 7), (3, 5)])
def test_values_and_gradients_are_torchvisions(ratio: int, size: tuple[int, int]) -> None:
    gen = torch.Generator().manual_seed(ratio)
    features = torch.randn(2, 5, 9, 11, generator=gen, requires_grad=True)
    corner = torch.rand(40, 2, generator=gen) * 60 - 10  # some boxes hang over the edges
    extent = torch.rand(40, 2, generator=gen) * 30
    batch = torch.randint(0, 2, (40, 1), generator=gen).float()
    rois = torch.cat([batch, corner, corner + extent], dim=1)
    rois[0, 1:] = torch.tensor([10.2, 10.3, 10.5, 10.4])  # under 1 px: widened to 1 bin px
    expected = roi_align(features, rois, size, 0.25, ratio, aligned=False)
    got = one_level(features, rois, size, 0.25, ratio)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    weights = torch.randn(expected.shape, generator=gen)
    (grad_expected,) = torch.autograd.grad((expected * weights).sum(), features)
    (grad_got,) = torch.autograd.grad((got * weights).sum(), features)
    torch.testing.assert_close(grad_got, grad_expected, rtol=0, atol=1e-5)


def fpn_maps(side: int, dtype: torch.dtype) -> OrderedDict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return OrderedDict(
        (name, torch.randn(3, 8, side >> (2 + i), side >> (2 + i), generator=gen).to(dtype))
        for i, name in enumerate(LEVELS)
    )


def random_boxes(side: int, count: int, images: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    boxes = []
    for _ in range(images):
        corner = torch.rand(count, 2, generator=gen) * side * 0.8
        extent = torch.rand(count, 2, generator=gen) * side * 0.6 + 0.5  # every FPN level
        boxes.append(torch.cat([corner, (corner + extent).clamp(max=side)], dim=1))
    return boxes


@pytest.mark.parametrize("bins", [7, 14])
def test_pooler_matches_torchvision_over_fpn_levels(bins: int) -> None:
    maps = fpn_maps(256, torch.float32)
    leaves = [m.to(memory_format=torch.channels_last).requires_grad_() for m in maps.values()]
    inputs = OrderedDict(zip(maps, leaves, strict=True))
    boxes, shapes = random_boxes(256, 30, 3), [(256, 256)] * 3
    expected = TorchvisionPooler(LEVELS, bins, 2)(inputs, boxes, shapes)
    got = MultiScaleRoIAlign(LEVELS, bins, 2)(inputs, boxes, shapes)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    grads_expected = torch.autograd.grad((expected**2).sum(), leaves)
    grads_got = torch.autograd.grad((got**2).sum(), leaves)
    for g, e in zip(grads_got, grads_expected, strict=True):
        torch.testing.assert_close(g, e, rtol=0, atol=1e-4)


def test_bf16_maps_give_bf16_bins_as_torchvision_under_autocast() -> None:
    maps, boxes, shapes = fpn_maps(128, torch.bfloat16), random_boxes(128, 10, 3), [(128, 128)] * 3
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = TorchvisionPooler(LEVELS, 7, 2)(maps, boxes, shapes)
        got = MultiScaleRoIAlign(LEVELS, 7, 2)(maps, boxes, shapes)
    assert got.dtype == expected.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), expected.float(), rtol=1e-2, atol=1e-2)


def test_no_boxes_give_an_empty_batch() -> None:
    out = MultiScaleRoIAlign(LEVELS, 7, 2)(
        fpn_maps(128, torch.float32), [torch.zeros(0, 4)] * 3, [(128, 128)] * 3
    )
    assert out.shape == (0, 8, 7, 7)


def test_mask_rcnn_losses_equal_with_torchvisions_poolers() -> None:
    torch.manual_seed(0)
    model = build_mask_rcnn("resnet18", "random", side=64, rois_per_image=32)
    images = [torch.rand(3, 64, 64) for _ in range(2)]
    masks = torch.zeros(1, 64, 64, dtype=torch.uint8)
    masks[0, 10:30, 20:50] = 1
    target = {
        "boxes": torch.tensor([[20.0, 10.0, 50.0, 30.0]]),
        "labels": torch.tensor([1]),
        "masks": masks,
    }
    model.train()
    torch.manual_seed(1)  # the rpn and roi samplers draw
    ours = model(images, [target, target])
    model.roi_heads.box_roi_pool = TorchvisionPooler(LEVELS, 7, 2)
    model.roi_heads.mask_roi_pool = TorchvisionPooler(LEVELS, 14, 2)
    torch.manual_seed(1)
    theirs = model(images, [target, target])
    assert ours.keys() == theirs.keys()
    for key in ours:
        torch.testing.assert_close(ours[key], theirs[key], rtol=1e-4, atol=1e-5)
