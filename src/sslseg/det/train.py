"""``sslseg detect``: Mask R-CNN fine-tuning and COCO AP on a segmentation store.

The run follows ``finetune``'s conventions: the store's images at ``side``; the split of the
layout (Roboflow's folders) or the seeded random split of :func:`sslseg.data.splits.make_split`;
instances from connected components of the binary masks or from instance label maps; SGD with
momentum (Detectron2's defaults scaled to the batch: lr 0.02 at 16 images -> 0.005 at 4), a
linear warm-up and a 10x drop at 3/4 of the epochs; horizontal flips; bf16 autocast where the
device has native bf16 (``precision``; the heads' outputs, the losses and box decoding stay
fp32) and channels_last weights.
After every epoch the validation mask AP (at most ``val_detections_per_image`` detections, COCO's
100: the mask head's cost is per detection, and an early model fills every slot) picks
``best.pt``; ``last.pt`` holds the whole state, so a killed run
resumes (a finished run deletes it). Every random draw of an epoch (batch order, flips, the
RPN / ROI samplers, which use torch's global generator) is seeded by ``(seed, epoch)``, so the
resumed run ends identical to an uninterrupted one.

The test set gets pycocotools' box and mask AP / AP50 / AP75 and the dataset-level IoU of the
union of predicted masks (score >= 0.5), the U-Net's figure; ``test_per_image.csv`` holds each
image's union-mask tp / fp / fn for paired comparisons, ``instances.png`` the predictions.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from sslseg.backbones import check_arch, seeded
from sslseg.board import Board
from sslseg.config import PRECISIONS, require, require_choice
from sslseg.data.sources import make_source
from sslseg.data.splits import Split, refuse_seen_test_images, split_for
from sslseg.data.store import Store, build_store
from sslseg.det import coco
from sslseg.det.instances import INSTANCE_RULES, boxes_of, instance_maps, instances_of
from sslseg.det.model import BATCH_NORM, build_mask_rcnn
from sslseg.devices import autocast, pick_device, resolve_precision
from sslseg.errors import SslsegError
from sslseg.loop import run_epochs
from sslseg.runs import RunDir, atomic_write_text

SCORE_THRESHOLD = 0.5  # a predicted instance counts in the union mask from this score


@dataclass
class DetectConfig:
    """Settings of one Mask R-CNN run (defaults: a CPU budget on 256-px PV tiles)."""

    source: str = "sample"
    root: str = ""
    source_options: dict[str, Any] = field(default_factory=dict)
    side: int = 256
    resize: str = "squash"
    instances: str = "auto"  # components of the binary mask, or the ids of an instance map
    min_area: int = 16  # px at side: smaller components / ids are not instances
    detections_per_image: int = 100  # kept per image at test time (DSB nuclei: 300)
    val_detections_per_image: int = 100  # kept per image when validating (picks best.pt)
    rois_per_image: int = 512  # proposals sampled per image for the box/mask heads (Detectron2)
    batch_norm: str = "auto"  # auto (frozen for imagenet, trained otherwise) | frozen | train
    arch: str = "resnet18"
    encoder: str = "random"
    dev_fraction: float = 0.8
    train_fraction: float = 1.0
    test_fraction: float = 0.2
    val_fraction: float = 0.1
    test_splits: list[str] = field(default_factory=lambda: ["test"])  # layout splits tested on
    epochs: int = 12
    batch_size: int = 4
    lr: float = 0.005
    momentum: float = 0.9
    weight_decay: float = 1e-4
    augment: str = "flip"
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # bf16 autocast where the device has native bf16, else fp32
    channels_last: bool = True  # the mask head's convs on up to 300 RoIs gain most (1.5x)
    out: str = "runs/detect"
    cache: str = ""
    figures: int = 6
    progress: bool = True
    tensorboard: bool = False  # TensorBoard event files in <out>/tensorboard
    transductive: bool = False

    def __post_init__(self) -> None:
        require(
            self.side % 32 == 0 and self.side > 0,
            "side",
            f"{self.side} is not a positive multiple of 32 (the FPN halves it 5 times)",
        )
        require_choice(self.instances, ("auto", *INSTANCE_RULES), "instances")
        require_choice(self.batch_norm, BATCH_NORM, "batch_norm")
        require(
            self.detections_per_image >= 1,
            "detections_per_image",
            f"{self.detections_per_image} must be at least 1",
        )
        require(
            self.val_detections_per_image >= 1,
            "val_detections_per_image",
            f"{self.val_detections_per_image} must be at least 1",
        )
        require_choice(self.precision, PRECISIONS, "precision")
        require(self.min_area >= 1, "min_area", f"{self.min_area} must be at least 1")
        require(self.epochs >= 1, "epochs", f"{self.epochs} must be at least 1")
        require(self.batch_size >= 1, "batch_size", f"{self.batch_size} must be at least 1")
        require(self.lr > 0, "lr", f"{self.lr} must be positive")
        require(
            self.augment in ("none", "flip"), "augment", f"'{self.augment}' is not none or flip"
        )
        require(
            0 < self.train_fraction <= 1, "train_fraction", f"{self.train_fraction} not in (0, 1]"
        )
        bad = set(self.test_splits) - {"val", "test"}
        require(not bad, "test_splits", f"{sorted(bad)} are not layout splits (val, test)")
        check_arch(self.arch, resnet_only="Mask R-CNN")  # before any data is read


def instance_rule(config: DetectConfig) -> str:
    """``components`` or ``map``: ``auto`` reads instance maps where the masks are ids."""
    if config.instances != "auto":
        return config.instances
    masks = str(config.source_options.get("masks", ""))
    return "map" if config.source == "coco" or masks == "instances" else "components"


@dataclass
class DetectionData:
    """A store with each image's instances at the store side."""

    store: Store
    masks: list[np.ndarray]  # K x S x S bool per image
    boxes: list[np.ndarray]  # K x 4 per image

    def target(self, i: int, flip: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Image ``i`` as Mask R-CNN wants it: float CHW in [0, 1] and its target dict."""
        image = torch.from_numpy(np.array(self.store.images[i])).permute(2, 0, 1).float() / 255
        masks = self.masks[i]
        if flip:
            image, masks = image.flip(-1), masks[:, :, ::-1]
        boxes = boxes_of(masks) if flip else self.boxes[i]
        return image, {
            "boxes": torch.from_numpy(np.ascontiguousarray(boxes)).reshape(-1, 4),
            "labels": torch.ones(len(masks), dtype=torch.int64),
            "masks": torch.from_numpy(np.ascontiguousarray(masks)).to(torch.uint8),
        }


def load_detection_data(config: DetectConfig, progress: bool) -> DetectionData:
    """The store of ``config`` and the instances of every image (one error lists bad files)."""
    source = make_source(config.source, config.root or None, **config.source_options)
    if not source.has_masks:
        raise SslsegError(f"config: source: '{config.source}' has no masks to take instances from")
    cache = Path(config.cache) if config.cache else None
    store = build_store(source, config.side, config.resize, cache, progress=progress)
    rule = instance_rule(config)
    ids = instance_maps(source, store, config.resize) if rule == "map" else None
    masks = [
        instances_of(rule, store.masks[i], None if ids is None else ids[i], config.min_area)
        for i in range(len(store))
    ]
    return DetectionData(store, masks, [boxes_of(m) for m in masks])


def _epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, 7]).generate_state(1)[0])


def lr_factor(step: int, warmup: int, drop_at: int) -> float:
    """Linear warm-up over ``warmup`` steps, then 1, then 0.1 from ``drop_at``."""
    if step < warmup:
        return 0.001 + (1 - 0.001) * step / warmup
    return 0.1 if step >= drop_at else 1.0


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    data: DetectionData,
    rows: np.ndarray,
    device: torch.device,
    batch_size: int = 4,
    precision: str = "fp32",
) -> list[dict[str, np.ndarray]]:
    """Boxes, scores and binary masks (prob > 0.5) of ``rows``, in order; the model's
    convolutions in ``precision`` (fp32 or bf16)."""
    model.eval()
    out = []
    for start in range(0, len(rows), batch_size):
        images = [
            data.target(int(i), False)[0].to(device) for i in rows[start : start + batch_size]
        ]
        with autocast(device, precision):
            preds = model(images)
        for pred in preds:
            out.append(
                {
                    "boxes": pred["boxes"].cpu().numpy(),
                    "scores": pred["scores"].cpu().numpy(),
                    "masks": (pred["masks"][:, 0] > 0.5).cpu().numpy(),
                }
            )
    return out


def score(
    data: DetectionData, rows: np.ndarray, preds: list[dict[str, np.ndarray]]
) -> tuple[dict[str, float], np.ndarray]:
    """COCO AP of ``preds`` on ``rows`` and per-image union-mask (tp, fp, fn)."""
    side = data.store.side
    gt = coco.ground_truth(
        [data.store.ids[i] for i in rows],
        [data.masks[i] for i in rows],
        [data.boxes[i] for i in rows],
        side,
    )
    results, counts = [], np.zeros((len(rows), 3), np.int64)
    for j, (i, p) in enumerate(zip(rows, preds)):
        results += coco.detections(j + 1, p["boxes"], p["scores"], p["masks"])
        truth = data.masks[i].any(0)
        kept = p["masks"][p["scores"] >= SCORE_THRESHOLD]
        union = kept.any(0) if len(kept) else np.zeros_like(truth)
        counts[j] = ((union & truth).sum(), (union & ~truth).sum(), (~union & truth).sum())
    metrics = coco.average_precision(gt, results)
    tp, fp, fn = counts.sum(0)
    metrics["union_iou"] = float(tp / max(tp + fp + fn, 1))
    return metrics, counts


def detect(config: DetectConfig) -> dict[str, Any]:
    """Train Mask R-CNN, keep the best-validation weights, score the test set, write the run."""
    run = RunDir(Path(config.out))
    if run.finished:
        run.check_same_config(config)
        return run.read_json("results.json")
    device = pick_device(config.device)  # a missing GPU before the data or the run folder
    data = load_detection_data(config, config.progress)
    split = split_for(data.store, config)
    if not config.transductive:
        store = data.store
        refuse_seen_test_images(
            config.encoder, config.source, config.root, store.ids, store.splits, split.test
        )
    with seeded(config.seed):
        model = build_mask_rcnn(
            config.arch,
            config.encoder,
            config.side,
            config.detections_per_image,
            config.rois_per_image,
            config.batch_norm,
        )
    run.check_same_config(config)
    run.create()
    run.write_config(config)
    run.write_json(
        "split.json",
        {k: [data.store.ids[i] for i in getattr(split, k)] for k in ("train", "val", "test")},
    )
    return _train(config, data, split, model, run, device)


class DetectEpochs:
    """The state of one detection run and its ``train_one_epoch`` (see ``sslseg.loop``)."""

    desc = "Mask R-CNN"

    def __init__(
        self,
        config: DetectConfig,
        data: DetectionData,
        split: Split,
        model: torch.nn.Module,
        run: RunDir,
        device: torch.device,
        precision: str,
    ) -> None:
        self.config, self.data, self.split, self.model = config, data, split, model
        self.run, self.device, self.precision = run, device, precision
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
        self.steps_per_epoch = steps = -(-len(split.train) // config.batch_size)
        warmup, drop_at = min(100, steps * config.epochs // 4), round(0.75 * steps * config.epochs)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, max(warmup, 1), drop_at)
        )
        self.best, self.best_epoch = float("-inf"), 0

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "best": self.best,
            "best_epoch": self.best_epoch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.best, self.best_epoch = state["best"], state["best_epoch"]

    def train_one_epoch(self, epoch: int, bar: tqdm) -> dict[str, Any]:
        config, data, model, device = self.config, self.data, self.model, self.device
        torch.manual_seed(_epoch_seed(config.seed, epoch))  # the RPN / ROI samplers draw here
        rng = np.random.default_rng(_epoch_seed(config.seed, epoch))
        order = rng.permutation(self.split.train)
        flips = rng.random(len(order)) < 0.5 if config.augment == "flip" else np.zeros(len(order))
        model.train()
        tic, losses = time.perf_counter(), []
        for b in range(self.steps_per_epoch):
            rows = order[b * config.batch_size : (b + 1) * config.batch_size]
            pairs = [
                data.target(int(i), bool(f)) for i, f in zip(rows, flips[b * config.batch_size :])
            ]
            images = [x.to(device) for x, _ in pairs]
            targets = [{k: v.to(device) for k, v in t.items()} for _, t in pairs]
            with autocast(device, self.precision):
                loss = sum(model(images, targets).values())
            if not torch.isfinite(loss):
                raise SslsegError(
                    f"training: loss became {float(loss)} at epoch {epoch + 1}; lower lr"
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            losses.append(loss.item())
            bar.update()
            bar.set_postfix(epoch=epoch + 1, loss=f"{losses[-1]:.3f}")
        seconds = time.perf_counter() - tic
        val, _ = score(data, self.split.val, self._predict_val())
        if val["mask_ap"] > self.best:
            self.best, self.best_epoch = val["mask_ap"], epoch + 1
            self.run.save("best.pt", {"model": model.state_dict(), "epoch": epoch + 1})
        return {
            "epoch": epoch + 1,
            "train_loss": float(np.mean(losses)),
            "val_mask_ap": val["mask_ap"],
            "val_box_ap": val["box_ap"],
            "best_epoch": self.best_epoch,
            "seconds": round(seconds, 3),
            "img_s": round(len(self.split.train) / seconds, 2),
            "compute_precision": self.precision,
        }

    def _predict_val(self) -> list[dict[str, np.ndarray]]:
        """The validation predictions, at most ``val_detections_per_image`` per image."""
        heads, config = self.model.roi_heads, self.config
        kept = heads.detections_per_img
        heads.detections_per_img = min(config.val_detections_per_image, kept)
        try:
            split, data = self.split, self.data
            return predict(self.model, data, split.val, self.device, precision=self.precision)
        finally:
            heads.detections_per_img = kept


def _memory_format(config: DetectConfig) -> torch.memory_format:
    return torch.channels_last if config.channels_last else torch.contiguous_format


def _train(
    config: DetectConfig,
    data: DetectionData,
    split: Split,
    model: torch.nn.Module,
    run: RunDir,
    device: torch.device,
) -> dict[str, Any]:
    if device.type == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    model.to(device, memory_format=_memory_format(config))
    precision = resolve_precision(device, config.precision)
    trainer = DetectEpochs(config, data, split, model, run, device, precision)
    board = Board(run, config.tensorboard)
    run_epochs(trainer, run, config.epochs, progress=config.progress, board=board)
    board.close()
    return _test(
        config,
        data,
        split,
        model,
        run,
        device,
        trainer.best_epoch,
        sum(r["seconds"] for r in run.read_log()),  # every epoch, before a resume too
        precision,
    )


def _test(
    config: DetectConfig,
    data: DetectionData,
    split: Split,
    model: torch.nn.Module,
    run: RunDir,
    device: torch.device,
    best_epoch: int,
    train_seconds: float,
    precision: str,
) -> dict[str, Any]:
    from sslseg.det.figures import plot_instances

    model.load_state_dict(run.load("best.pt")["model"])
    preds = predict(model, data, split.test, device, precision=precision)
    results, counts = score(data, split.test, preds)
    results.update(
        best_epoch=best_epoch,
        epochs=config.epochs,
        train_images=len(split.train),
        test_images=len(split.test),
        train_seconds=round(train_seconds, 2),
        test_instances=int(sum(len(data.masks[i]) for i in split.test)),
        compute_precision=precision,  # "precision" would read as a metric
    )
    lines = ["id,tp,fp,fn,instances,predicted"]
    for j, i in enumerate(split.test):
        n_pred = int((preds[j]["scores"] >= SCORE_THRESHOLD).sum())
        lines.append(
            f"{data.store.ids[i]},{counts[j, 0]},{counts[j, 1]},{counts[j, 2]},"
            f"{len(data.masks[i])},{n_pred}"
        )
    atomic_write_text(run.path("test_per_image.csv"), "\n".join(lines) + "\n")
    shown = list(range(min(config.figures, len(split.test))))
    if shown:
        plot_instances(
            [data.store.images[split.test[j]] for j in shown],
            [data.masks[split.test[j]] for j in shown],
            [preds[j] for j in shown],
            run.path("instances.png"),
            SCORE_THRESHOLD,
        )
    run.finish(results, "last.pt")
    return results
