"""Fine-tune the U-Net on a segmentation store (seed 1, §2.2): BCE, Adam, best-val checkpoint.

Batches are index arrays into the decoded uint8 store, moved to the device and augmented as
tensors, so no epoch decodes an image. Every source of randomness is derived from
``(seed, epoch)``, so a run resumed from its last epoch checkpoint ends with the same weights
and metrics as an uninterrupted one.
"""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from sslseg.augment.views import flip_batch
from sslseg.backbones import IMAGENET_MEAN, IMAGENET_STD, check_arch, seeded
from sslseg.board import Board
from sslseg.config import PRECISIONS, require, require_choice
from sslseg.data.splits import Split, refuse_seen_test_images, split_for
from sslseg.data.store import Store, open_store
from sslseg.devices import autocast, full_precision, pick_device, resolve_precision
from sslseg.errors import SslsegError
from sslseg.loop import epoch_batches, run_epochs
from sslseg.runs import RunDir, atomic_write_bytes, atomic_write_text
from sslseg.seg.figures import plot_curves, plot_predictions
from sslseg.seg.metrics import (
    masked_bce,
    per_image_stats,
    soft_mask_average_precision,
    summarise,
)
from sslseg.seg.unet import build_unet, save_smp_pretrained
from sslseg.seg.warm_start import load_init, read_init, refuse_init_seen_test_images

AUGMENTS = ("none", "flip")
#: the best-validation U-Net in smp's ``save_pretrained`` layout, inside the run folder
SMP_FOLDER = "smp"


@dataclass
class FinetuneConfig:
    """Settings of one fine-tuning run (defaults: seed 1's study, ResNet-18 for CPUs)."""

    source: str = "sample"
    root: str = ""
    source_options: dict[str, Any] = field(default_factory=dict)  # passed to the source
    border: str = "foreground"
    side: int = 128
    resize: str = "squash"
    arch: str = "resnet18"
    encoder: str = "random"
    # init: the whole U-Net (encoder, decoder, head) starts from a previous run's weights, the
    # optimiser afresh; needs encoder=random and the same arch; a resumed run's own checkpoint wins
    init: str = ""  # a run's best.pt, a stopped run's last.pt, or a folder (best.pt); "": none
    dev_fraction: float = 0.8
    train_fraction: float = 1.0  # nested share of the train split used (label-fraction curves)
    test_fraction: float = 0.2
    val_fraction: float = 0.1
    # with a layout that has its own split (Roboflow's train/valid/test folders): the splits
    # tested on; dev_fraction is then the share of its train tiles
    test_splits: list[str] = field(default_factory=lambda: ["test"])
    epochs: int = 60
    batch_size: int = 16
    lr: float = 1e-4
    weight_decay: float = 0.0
    augment: str = "flip"
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # bf16 autocast where the device has native bf16, else fp32
    channels_last: bool = True
    out: str = "runs/finetune"
    cache: str = ""
    figures: int = 6
    # allow an encoder (or init run) trained on this run's test images (refused by default)
    transductive: bool = False
    progress: bool = True  # progress bars (changes no result)
    tensorboard: bool = False  # TensorBoard event files in <out>/tensorboard

    def __post_init__(self) -> None:
        require(
            self.side % 32 == 0 and self.side > 0,
            "side",
            f"{self.side} is not a positive multiple of 32 (the U-Net halves it 5 times)",
        )
        require(self.epochs >= 1, "epochs", f"{self.epochs} must be at least 1")
        require(self.batch_size >= 1, "batch_size", f"{self.batch_size} must be at least 1")
        require(self.lr > 0, "lr", f"{self.lr} must be positive")
        require(self.weight_decay >= 0, "weight_decay", f"{self.weight_decay} must be >= 0")
        require_choice(self.augment, AUGMENTS, "augment")
        require(
            "border" not in self.source_options,
            "source_options.border",
            "set border= itself (it is a key of its own)",
        )
        bad = sorted(set(self.test_splits) - {"val", "test"})
        require(not bad, "test_splits", f"{bad} are not layout splits (val, test)")
        require(0 < self.dev_fraction <= 1, "dev_fraction", f"{self.dev_fraction} not in (0, 1]")
        require(
            0 < self.train_fraction <= 1, "train_fraction", f"{self.train_fraction} not in (0, 1]"
        )
        require_choice(self.precision, PRECISIONS, "precision")
        require(
            self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"),
            "device",
            f"'{self.device}' is not auto, cpu or cuda",
        )
        check_arch(self.arch)  # a bad arch fails here, before the store is built
        require(
            not self.init or self.encoder == "random",
            "init",
            f"{self.init} sets the whole U-Net, its encoder too: it conflicts with "
            f"encoder={self.encoder} (keep encoder=random with init)",
        )


class BatchLoader:
    """Index batches of a store as normalised float tensors on the device."""

    def __init__(self, store: Store, device: torch.device, channels_last: bool) -> None:
        self.store = store
        self.device = device
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1) * 255

    def __call__(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        idx = np.sort(idx)  # sorted reads are sequential in the memory map
        images = torch.from_numpy(np.ascontiguousarray(self.store.images[idx])).to(self.device)
        masks = torch.from_numpy(np.ascontiguousarray(self.store.masks[idx])).to(self.device)
        x = images.permute(0, 3, 1, 2).float().sub_(self.mean).div_(self.std)
        return x.contiguous(memory_format=self.memory_format), masks


def forward_logits(model: nn.Module, x: torch.Tensor, precision: str) -> torch.Tensor:
    """The model's logits as fp32, its convolutions in ``precision`` (fp32 or bf16)."""
    with autocast(x.device, precision):
        return model(x).float()


def build_optimizer(model: nn.Module, lr: float, weight_decay: float = 0.0) -> torch.optim.Adam:
    """Adam, fused: 1.06x torch's per-parameter loop on the U-Net R18 step (2-core CPU,
    ``docs/results/step-options.txt``); ``torch.compile`` was slower there (0.81x), unused."""
    return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay, fused=True)


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    precision: str = "fp32",
) -> torch.Tensor:
    """One optimiser step on masked BCE; returns the (detached) loss. The loss is fp32."""
    logits = forward_logits(model, x, precision)
    with full_precision(logits):
        loss = masked_bce(logits, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


@torch.no_grad()
def predict(
    model: nn.Module,
    load: BatchLoader,
    indices: np.ndarray,
    batch_size: int = 32,
    precision: str = "fp32",
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-image stats and probability maps (N x S x S, float16) for ``indices`` in order."""
    model.eval()
    chunks, probs = [], []
    for start in range(0, len(indices), batch_size):
        idx = indices[start : start + batch_size]
        x, y = load(idx)
        logits = forward_logits(model, x, precision)
        chunks.append(per_image_stats(logits, y))
        probs.append(torch.sigmoid(logits)[:, 0].cpu().numpy().astype(np.float16))
    stats = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    return stats, np.concatenate(probs)


@torch.no_grad()
def validation_loss(
    model: nn.Module,
    load: BatchLoader,
    indices: np.ndarray,
    batch_size: int = 32,
    precision: str = "fp32",
) -> float:
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(indices), batch_size):
        x, y = load(indices[start : start + batch_size])
        total += masked_bce(forward_logits(model, x, precision), y).item() * len(x)
        count += len(x)
    return total / max(count, 1)


def open_finetune_store(
    config: FinetuneConfig, progress: bool = True, *, masks: bool = True
) -> Store:
    """The segmentation store a fine-tuning config reads (built on first use); with
    ``masks=False`` a source without masks is taken too (images for pseudo-labels)."""
    options = {"border": config.border} if config.source in ("sample", "oxford-pet") else {}
    options.update(config.source_options)
    store = open_store(
        config.source,
        config.root or None,
        config.side,
        config.resize,
        Path(config.cache) if config.cache else None,
        progress,
        **options,
    )
    if masks and store.masks is None:
        raise SslsegError(f"config: source: '{config.source}' has no masks to fine-tune on")
    return store


def finetune(config: FinetuneConfig, progress: bool | None = None) -> dict[str, Any]:
    """Train, keep the best-validation weights, evaluate on the test set, write the run.

    ``progress`` overrides ``config.progress`` when given.
    """
    progress = config.progress if progress is None else progress
    device = pick_device(config.device)
    run = RunDir(Path(config.out))
    if run.finished:
        run.check_same_config(config)
        return run.read_json("results.json")
    # Validate everything (data, encoder, init) before the run folder exists: nothing
    # half-written. init applies at epoch 0 only: a resumed run restores its own last.pt.
    starting = not run.path("last.pt").is_file()
    init = read_init(config) if config.init and starting else None
    store = open_finetune_store(config, progress)
    split = split_for(store, config)
    if not config.transductive:
        refuse_seen_test_images(
            config.encoder, config.source, config.root, store.ids, store.splits, split.test
        )
        if init is not None:
            refuse_init_seen_test_images(
                init[0], config.source, config.root, store.ids, store.splits, split.test
            )
    with seeded(config.seed):  # the seed names the initial weights (decoder, random encoder)
        model = build_unet(config.arch, config.encoder)
    if init is not None:
        load_init(model, *init, config.arch)
    run.check_same_config(config)
    run.create()
    run.write_config(config)
    run.write_json(
        "split.json",
        {k: [store.ids[i] for i in getattr(split, k)] for k in ("train", "val", "test")},
    )
    return _train(config, store, split, model, run, device, progress)


class FinetuneEpochs:
    """The state of one fine-tuning run and its ``train_one_epoch`` (see ``sslseg.loop``)."""

    desc = "fine-tuning"

    def __init__(
        self,
        config: FinetuneConfig,
        split: Split,
        model: nn.Module,
        load: BatchLoader,
        run: RunDir,
        precision: str,
    ) -> None:
        self.config, self.split, self.model, self.load, self.run = config, split, model, load, run
        self.precision = precision
        self.optimizer = build_optimizer(model, config.lr, config.weight_decay)
        self.steps_per_epoch = len(epoch_batches(split.train, config.batch_size, 0, 0))
        self.best_val, self.best_epoch = float("inf"), -1

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "best_val": self.best_val,
            "best_epoch": self.best_epoch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.best_val, self.best_epoch = state["best_val"], state["best_epoch"]

    def train_one_epoch(self, epoch: int, bar: tqdm) -> dict[str, Any]:
        config, model = self.config, self.model
        model.train()
        generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
        tic, losses = time.perf_counter(), []
        for idx in epoch_batches(self.split.train, config.batch_size, config.seed, epoch):
            x, y = self.load(idx)
            if config.augment == "flip":
                x, y = flip_batch(x, y, generator)
            loss = train_step(model, self.optimizer, x, y, self.precision).item()
            if not np.isfinite(loss):
                raise SslsegError(f"training: loss became {loss} at epoch {epoch + 1}; lower lr")
            losses.append(loss)
            bar.update()
        seconds = time.perf_counter() - tic
        val = validation_loss(model, self.load, self.split.val, precision=self.precision)
        if val < self.best_val:
            self.best_val, self.best_epoch = val, epoch
            self.run.save("best.pt", {"model": model.state_dict(), "epoch": epoch, "val_loss": val})
        bar.set_postfix(loss=f"{np.mean(losses):.3f}", val=f"{val:.3f}")
        return {
            "epoch": epoch + 1,
            "train_loss": float(np.mean(losses)),
            "val_loss": val,
            "best_epoch": self.best_epoch + 1,
            "seconds": round(seconds, 3),
            "img_s": round(len(self.split.train) / seconds, 2),
            "compute_precision": self.precision,
        }


def _train(
    config: FinetuneConfig,
    store: Store,
    split: Split,
    model: nn.Module,
    run: RunDir,
    device: torch.device,
    progress: bool,
) -> dict[str, Any]:
    if device.type == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    precision = resolve_precision(device, config.precision)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    model = model.to(device=device, memory_format=memory_format)
    load = BatchLoader(store, device, config.channels_last)
    trainer = FinetuneEpochs(config, split, model, load, run, precision)
    board = Board(run, config.tensorboard)
    run_epochs(trainer, run, config.epochs, progress=progress, board=board)
    train_seconds = sum(r.get("seconds", 0.0) for r in run.read_log())  # before a resume too
    best_epoch = trainer.best_epoch
    results, probs = _evaluate(
        config, store, split, model, run, load, best_epoch, train_seconds, precision
    )
    shown = split.test[: config.figures]
    if len(shown):
        rows = prediction_rows(store, shown, probs[: len(shown)] * 255)
        board.images("test/image_mask_prediction", rows, per_row=3)
    board.close()
    return results


def prediction_rows(store: Store, rows: np.ndarray, probs: np.ndarray) -> torch.Tensor:
    """Image, true mask (ignored pixels grey) and predicted probability (``probs``, 0-255) of
    each row, as ``3N x 3 x S x S`` in 0-255."""
    images = torch.from_numpy(np.asarray(store.images[rows])).permute(0, 3, 1, 2).float()
    labels = np.asarray(store.masks[rows])
    masks = np.where(labels == 255, 128, labels.astype(np.float32) * 255)
    planes = [torch.from_numpy(np.asarray(m, np.float32)) for m in (masks, probs[: len(rows)])]
    masks_rgb, predicted = (p.unsqueeze(1).expand(-1, 3, -1, -1) for p in planes)
    return torch.stack([images, masks_rgb, predicted], 1).flatten(0, 1)


def _evaluate(
    config: FinetuneConfig,
    store: Store,
    split: Split,
    model: nn.Module,
    run: RunDir,
    load: BatchLoader,
    best_epoch: int,
    train_seconds: float,
    precision: str,
) -> tuple[dict[str, Any], np.ndarray]:
    """Test the best-validation weights; writes the results and figures, and returns the
    results with the test images' predicted probabilities."""
    model.load_state_dict(run.load("best.pt")["model"])
    save_smp_pretrained(model, run.path(SMP_FOLDER))  # smp.from_pretrained(<out>/smp)
    stats, probs = predict(model, load, split.test, precision=precision)
    results: dict[str, Any] = summarise(stats)
    results["average_precision"] = soft_mask_average_precision(probs, store.masks[split.test])
    results.update(
        best_epoch=best_epoch + 1,
        epochs=config.epochs,
        train_images=len(split.train),
        test_images=len(split.test),
        train_seconds=round(train_seconds, 2),
        train_img_s=round(len(split.train) * config.epochs / max(train_seconds, 1e-9), 2),
        compute_precision=precision,  # "precision" is the metric
    )
    lines = ["id,tp,fp,fn,tn,dice_loss,focal_loss,bce"]
    for j, i in enumerate(split.test):
        row = [stats[k][j] for k in ("tp", "fp", "fn", "tn", "dice_loss", "focal_loss", "bce")]
        lines.append(",".join([store.ids[i]] + [f"{v:.6g}" for v in row]))
    atomic_write_text(run.path("test_per_image.csv"), "\n".join(lines) + "\n")
    shown = split.test[: config.figures]
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        ids=np.array([store.ids[i] for i in shown]),
        probs=(probs[: len(shown)].astype(np.float32) * 255).round().astype(np.uint8),
    )
    atomic_write_bytes(run.path("test_predictions.npz"), buffer.getvalue())
    if len(shown):
        plot_predictions(
            store.images[shown],
            store.masks[shown],
            probs[: len(shown)],
            run.path("predictions.png"),
        )
    plot_curves(run.read_log(), run.path("curves.png"))
    run.finish(results, "last.pt")
    return results, probs
