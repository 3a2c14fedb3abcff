"""Table 4.1's metrics on a test set, from smp's metrics and losses.

IoU, F1, recall, accuracy and precision are dataset-level ("micro": pixel counts summed over
all test images, then the ratio); Dice loss, focal loss and BCE are averaged per image. Pixels
marked ``IGNORE`` (255) count in neither. ``iou_per_image`` (the mean of per-image IoU) is
reported as well, and the per-image counts are returned for paired statistics.
"""

from __future__ import annotations

import numpy as np
import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F

IGNORE = 255
METRIC_KEYS = ("iou", "f1", "dice_loss", "focal_loss", "bce", "recall", "accuracy", "precision")

_dice = smp.losses.DiceLoss(mode="binary", from_logits=True, ignore_index=IGNORE)
_focal = smp.losses.FocalLoss(mode="binary", ignore_index=IGNORE)


def masked_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean BCE-with-logits over pixels whose target is not ``IGNORE``.

    ``logits`` is B x 1 x H x W, ``target`` B x H x W (uint8 or long, 0/1/255).
    """
    valid = target != IGNORE
    tgt = (target == 1).to(logits.dtype).unsqueeze(1)
    loss = F.binary_cross_entropy_with_logits(logits, tgt, reduction="none")
    weight = valid.unsqueeze(1).to(logits.dtype)
    return (loss * weight).sum() / weight.sum().clamp_min(1.0)


def per_image_stats(logits: torch.Tensor, target: torch.Tensor) -> dict[str, np.ndarray]:
    """tp, fp, fn, tn and the three losses for each image of a batch."""
    tgt = target.long().unsqueeze(1)
    # smp's binary mode has no ignore_index; the two-class form does, and its class-1 column
    # is exactly the binary foreground counts.
    pred = (logits[:, 0] > 0).long()
    counts = smp.metrics.get_stats(
        pred, target.long(), mode="multiclass", num_classes=2, ignore_index=IGNORE
    )
    out = {k: v[:, 1].cpu().numpy() for k, v in zip(("tp", "fp", "fn", "tn"), counts, strict=True)}
    losses = {"dice_loss": [], "focal_loss": [], "bce": []}
    for i in range(logits.shape[0]):
        lg, tg = logits[i : i + 1].float(), tgt[i : i + 1]
        losses["dice_loss"].append(_dice(lg, tg).item())
        losses["focal_loss"].append(_focal(lg, tg).item())
        losses["bce"].append(masked_bce(lg, target[i : i + 1]).item())
    out.update({k: np.array(v) for k, v in losses.items()})
    return out


def summarise(stats: dict[str, np.ndarray]) -> dict[str, float]:
    """Dataset-level metrics from per-image counts; losses averaged over images."""
    tp, fp, fn, tn = (torch.as_tensor(stats[k]).sum() for k in ("tp", "fp", "fn", "tn"))
    micro = dict(
        iou=smp.metrics.iou_score(tp, fp, fn, tn, reduction="micro"),
        f1=smp.metrics.f1_score(tp, fp, fn, tn, reduction="micro"),
        recall=smp.metrics.recall(tp, fp, fn, tn, reduction="micro"),
        accuracy=smp.metrics.accuracy(tp, fp, fn, tn, reduction="micro"),
        precision=smp.metrics.precision(tp, fp, fn, tn, reduction="micro"),
    )
    result = {k: float(v) for k, v in micro.items()}
    for k in ("dice_loss", "focal_loss", "bce"):
        result[k] = float(np.mean(stats[k]))
    result["iou_per_image"] = float(np.mean(image_iou(stats)))
    return result


def image_iou(stats: dict[str, np.ndarray]) -> np.ndarray:
    """IoU of each image (1.0 where an image has neither prediction nor foreground)."""
    tp, fp, fn = (np.asarray(stats[k], dtype=np.float64) for k in ("tp", "fp", "fn"))
    denom = tp + fp + fn
    return np.where(denom > 0, tp / np.maximum(denom, 1), 1.0)


def soft_mask_average_precision(probs: np.ndarray, masks: np.ndarray) -> float:
    """Average precision of the soft mask over all valid test pixels (scikit-learn)."""
    from sklearn.metrics import average_precision_score

    valid = masks != IGNORE
    return float(average_precision_score(masks[valid] == 1, probs[valid].astype(np.float32)))
