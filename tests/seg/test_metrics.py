import math

import numpy as np
import torch

from sslseg.seg.metrics import masked_bce, per_image_stats, summarise


def test_counts_and_dataset_level_metrics_by_hand():
    # image 1: tp at (0,0), fp at (0,1), fn at (1,0), (1,1) ignored
    # image 2: tn everywhere but one tp
    logits = torch.tensor([[[[5.0, 5.0], [-5.0, -5.0]]], [[[5.0, -5.0], [-5.0, -5.0]]]])
    target = torch.tensor([[[1, 0], [1, 255]], [[1, 0], [0, 0]]], dtype=torch.uint8)
    stats = per_image_stats(logits, target)
    assert stats["tp"].tolist() == [1, 1]
    assert stats["fp"].tolist() == [1, 0]
    assert stats["fn"].tolist() == [1, 0]
    assert stats["tn"].tolist() == [0, 3]
    result = summarise(stats)
    assert math.isclose(result["iou"], 2 / 4, rel_tol=1e-6)  # tp / (tp + fp + fn), pooled
    assert math.isclose(result["recall"], 2 / 3, rel_tol=1e-6)
    assert math.isclose(result["precision"], 2 / 3, rel_tol=1e-6)
    assert math.isclose(result["accuracy"], 5 / 7, rel_tol=1e-6)
    assert math.isclose(result["f1"], 2 * 2 / (2 * 2 + 1 + 1), rel_tol=1e-6)
    assert math.isclose(result["iou_per_image"], (1 / 3 + 1) / 2, rel_tol=1e-6)


def test_masked_bce_ignores_border_pixels():
    logits = torch.tensor([[[[0.0, 100.0]]]])
    target = torch.tensor([[[1, 255]]], dtype=torch.uint8)
    assert math.isclose(masked_bce(logits, target).item(), math.log(2), rel_tol=1e-6)


def test_focal_is_below_bce_and_dice_in_range():
    rng = np.random.default_rng(0)
    logits = torch.tensor(rng.normal(size=(3, 1, 8, 8)), dtype=torch.float32)
    target = torch.tensor(rng.integers(0, 2, size=(3, 8, 8)), dtype=torch.uint8)
    stats = per_image_stats(logits, target)
    assert (stats["focal_loss"] < stats["bce"]).all()
    assert ((0 <= stats["dice_loss"]) & (stats["dice_loss"] <= 1)).all()
