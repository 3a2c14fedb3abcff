"""The downstream models a study trains an encoder into, and how a cell of each is configured.

Two models: the U-Net (``finetune``, foreground IoU) and Mask R-CNN (``detect``, mask AP). A
study holds one ``finetune`` and one ``detect`` section; a detection cell reads its data from
``finetune`` (:data:`SHARED_DATA_KEYS`), so both models of a seed train and test on one split.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from sslseg.config import require
from sslseg.det.train import DetectConfig, detect
from sslseg.seg.finetune import FinetuneConfig, finetune

#: each downstream model: how it trains, the metric compared, the metrics kept in result CSVs
DOWNSTREAM: dict[str, tuple[Callable[[Any], dict], str, tuple[str, ...]]] = {
    "unet": (finetune, "iou", ("iou", "average_precision", "f1", "recall", "accuracy")),
    "maskrcnn": (detect, "mask_ap", ("mask_ap", "mask_ap50", "box_ap", "box_ap50", "union_iou")),
}
METRIC_NAMES = {"iou": "U-Net IoU", "mask_ap": "Mask R-CNN mask AP"}
#: the keys a detection cell takes from ``finetune``, so both downstream models see one split
#: (``train_fraction``, a nested share of its train images, stays each model's own unless the
#: study sets it per cell)
SHARED_DATA_KEYS = (
    "source",
    "root",
    "source_options",
    "resize",
    "dev_fraction",
    "test_fraction",
    "val_fraction",
    "test_splits",
    "transductive",
)


def check_downstream(names: list[str]) -> None:
    """A study's ``downstream`` list: at least one known model."""
    require(len(names) > 0, "downstream", "at least one is needed")
    bad = [d for d in names if d not in DOWNSTREAM]
    require(not bad, "downstream", f"unknown {bad}; choose from {list(DOWNSTREAM)}")


def devices(finetune_cfg: FinetuneConfig, detect_cfg: DetectConfig, names: list[str]) -> list[str]:
    """The device each of a study's downstream models trains on."""
    return [(finetune_cfg if d == "unet" else detect_cfg).device for d in names]


def trainer(downstream: str) -> Callable[[Any], dict]:
    return DOWNSTREAM[downstream][0]


def metric(downstream: str) -> str:
    """The metric a study compares for this downstream model."""
    return DOWNSTREAM[downstream][1]


def kept_metrics(downstream: str) -> tuple[str, ...]:
    return DOWNSTREAM[downstream][2]


def cell_config(
    finetune_cfg: FinetuneConfig, detect_cfg: DetectConfig, downstream: str, **per_cell: Any
) -> FinetuneConfig | DetectConfig:
    """One cell's resolved config: the study's section for that model with the cell's keys
    (seed, encoder, out, ...); a detection cell takes its data keys from ``finetune_cfg``."""
    if downstream == "unet":
        return dataclasses.replace(finetune_cfg, **per_cell)
    data = {k: getattr(finetune_cfg, k) for k in SHARED_DATA_KEYS}
    return dataclasses.replace(detect_cfg, **{**data, **per_cell})
