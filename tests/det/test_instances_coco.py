"""Instances from masks, the COCO round trip, and AP against hand-computed values."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from sslseg.det import coco
from sslseg.det.instances import boxes_of, components, resize_ids, split_map
from sslseg.det.model import anchor_sizes, build_mask_rcnn, freeze_batch_norm


def _two_blobs():
    m = np.zeros((16, 16), np.uint8)
    m[2:8, 2:8] = 1  # 36 px
    m[10:14, 9:15] = 1  # 24 px
    m[0, 15] = 1  # a 1-px speck
    m[15, 0] = 255  # ignored pixels are not foreground
    return m


def test_connected_components_with_a_minimum_area():
    parts = components(_two_blobs(), min_area=4)
    assert parts.shape == (2, 16, 16)
    assert sorted(int(p.sum()) for p in parts) == [24, 36]
    assert components(_two_blobs(), min_area=1).shape[0] == 3
    # diagonal neighbours join (8-connectivity)
    diag = np.zeros((4, 4), np.uint8)
    diag[0, 0] = diag[1, 1] = 1
    assert components(diag).shape[0] == 1


def test_boxes_are_pixel_edges():
    parts = components(_two_blobs(), min_area=4)
    assert sorted(boxes_of(parts).tolist()) == [[2, 2, 8, 8], [9, 10, 15, 14]]


def test_instance_map_ids_and_nearest_resize():
    ids = np.zeros((8, 8), np.int32)
    ids[:4, :4], ids[4:, 4:], ids[0, 7] = 300, 7, 9
    parts = split_map(ids, min_area=2)
    assert parts.shape[0] == 2 and {int(p.sum()) for p in parts} == {16}
    small = resize_ids(ids, 4, "squash")
    assert set(np.unique(small)) <= {0, 7, 9, 300}  # ids are never averaged


def test_coco_round_trip_through_a_file(tmp_path):
    parts = components(_two_blobs(), min_area=4)
    gt = coco.ground_truth(["a.png"], [parts], [boxes_of(parts)], 16)
    path = tmp_path / "instances.json"
    coco.write_json(path, gt)
    back = coco.read_instances(path)["a.png"]
    assert len(back) == 2 and all((b == p).all() for b, p in zip(back, parts))
    assert json.loads(path.read_text())["annotations"][0]["bbox"] == [2.0, 2.0, 6.0, 6.0]


def test_ap_equals_hand_computed_values():
    parts = components(_two_blobs(), min_area=4)
    boxes = boxes_of(parts)
    gt = coco.ground_truth(["a"], [parts], [boxes], 16)
    perfect = coco.average_precision(gt, coco.detections(1, boxes, np.array([0.9, 0.8]), parts))
    assert perfect["mask_ap"] == pytest.approx(1.0) and perfect["box_ap75"] == pytest.approx(1.0)
    # one of two found, at precision 1: recall 0.5 -> 51 of COCO's 101 recall points
    half = coco.average_precision(gt, coco.detections(1, boxes[:1], np.array([0.9]), parts[:1]))
    assert half["mask_ap"] == pytest.approx(51 / 101)
    # a false positive scored above both true ones: precision 0, 1/2, 2/3 at recall 0, .5, 1;
    # COCO's interpolated precision (the best at any higher recall) is 2/3 at every point
    wrong = np.zeros((1, 16, 16), bool)
    wrong[0, 0:2, 12:16] = True
    dets = coco.detections(1, boxes_of(wrong), np.array([0.95]), wrong)
    dets += coco.detections(1, boxes, np.array([0.9, 0.8]), parts)
    ap = coco.average_precision(gt, dets)["mask_ap"]
    assert ap == pytest.approx(2 / 3)
    # a box shifted to IoU 0.6: counted at AP50, not at AP75
    shifted = parts.copy()
    shifted[0] = np.roll(shifted[0], 1, axis=1)  # IoU 30 / 42
    iou = (parts[0] & shifted[0]).sum() / (parts[0] | shifted[0]).sum()
    assert 0.5 < iou < 0.75
    s = coco.average_precision(
        gt, coco.detections(1, boxes_of(shifted), np.array([0.9, 0.8]), shifted)
    )
    # at IoU 0.75 the shifted one (scored first) is a false positive: precision 1/2 to recall .5
    assert s["mask_ap50"] == pytest.approx(1.0) and s["mask_ap75"] == pytest.approx(51 * 0.5 / 101)


def test_mask_rcnn_on_an_encoder_file(tmp_path):
    import torch
    import torchvision

    from sslseg.backbones import save_encoder

    body = torchvision.models.resnet18()
    body.fc = torch.nn.Identity()
    torch.nn.init.constant_(body.conv1.weight, 0.01)
    body.bn1.running_mean.fill_(0.5)
    path = save_encoder(body, tmp_path / "encoder.pt", {"arch": "resnet18", "stem": "imagenet"})
    model = build_mask_rcnn("resnet18", path, side=64)
    state = model.backbone.body.state_dict()
    assert torch.allclose(state["conv1.weight"], torch.full_like(state["conv1.weight"], 0.01))
    # an encoder's statistics start the body; self-supervised bodies train batch norm (MoCo's
    # detection transfer), unless told to freeze it
    assert torch.allclose(state["bn1.running_mean"], torch.full((64,), 0.5))
    assert type(model.backbone.body.bn1).__name__ == "BatchNorm2d"
    frozen = build_mask_rcnn("resnet18", path, side=64, batch_norm="frozen").backbone.body
    assert type(frozen.bn1).__name__ == "FrozenBatchNorm2d"
    assert torch.allclose(frozen.bn1.running_mean, torch.full((64,), 0.5))
    assert type(build_mask_rcnn("resnet18", "random", 64).backbone.body.bn1).__name__ == (
        "BatchNorm2d"
    )
    assert anchor_sizes(800) == ((32,), (64,), (128,), (256,), (512,))
    assert anchor_sizes(256)[0] == (10,)
    bn = torch.nn.Sequential(torch.nn.BatchNorm2d(3))
    assert type(freeze_batch_norm(bn)[0]).__name__ == "FrozenBatchNorm2d"


def test_heads_give_fp32_under_bf16_autocast():
    # box decoding, NMS and the losses must not see bf16: at 128 px its 8-bit mantissa puts box
    # corners on a 0.5 px grid
    torch.manual_seed(0)
    model = build_mask_rcnn("resnet18", "random", side=64, detections_per_image=5)
    image = torch.rand(3, 64, 64)
    mask = torch.zeros(1, 64, 64, dtype=torch.uint8)
    mask[0, 10:30, 12:40] = 1
    target = {
        "boxes": torch.tensor([[12.0, 10.0, 40.0, 30.0]]),
        "labels": torch.ones(1, dtype=torch.int64),
        "masks": mask,
    }
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = model([image], [target])
        model.eval()
        with torch.no_grad():
            (pred,) = model([image])
    assert all(v.dtype == torch.float32 for v in losses.values())
    assert len(pred["boxes"]) == 5  # an untrained model fills every slot
    assert {pred[k].dtype for k in ("boxes", "scores", "masks")} == {torch.float32}
    # the backbone itself did run in bf16
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        features = model.backbone(image[None])
    assert features["0"].dtype == torch.bfloat16


def test_bad_coco_file_is_one_line(tmp_path):
    from sslseg.errors import SslsegError

    bad = tmp_path / "x.json"
    bad.write_text("{not json")
    with pytest.raises(SslsegError, match="x.json: not a readable COCO instances file"):
        coco.read_instances(bad)
    Image.new("L", (2, 2)).save(tmp_path / "unused.png")
