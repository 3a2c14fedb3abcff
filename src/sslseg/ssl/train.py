"""The generic pretraining loop shared by every method.

Batches are index batches into the decoded uint8 store (a memory-mapped ``N x S x S x 3``
array): each step reads ``batch_size`` images, moves them to the training device and lets the
view maker augment the whole batch there — no DataLoader, no worker processes, no PIL.

Optimisers: Adam, SGD with momentum, and LARS (You et al. 2017, arXiv:1708.03888; lightly's
implementation, as SimCLR uses it). Batch-norm and bias parameters get no weight decay and,
under LARS, no trust-ratio scaling (SimCLR appendix B.1). The learning rate follows a linear
warm-up then a cosine decay to zero, stepped per iteration (SimCLR section B.1).

Reproducibility and resume: the epoch's permutation and the view generator are re-seeded
from (seed, epoch, rank) at the start of every epoch, and a checkpoint is written after every
epoch (module with all its state, optimiser, scheduler, RNG states, epoch). A killed run that
is started again continues from the last checkpoint and ends with the same weights as an
uninterrupted one.

Speed: channels_last activations (on a 2-core CPU a measured 1.15x on ResNet-18), bf16
autocast wherever the device multiplies bf16 natively (``precision: auto``: CUDA GPUs, and CPUs
with AVX-512 BF16 or AMX, where a ResNet-18 step ran 1.66x faster than fp32 on a 2-core Zen 4)
with every loss computed in fp32, optional ``torch.compile`` of the backbone; DDP under
``torchrun`` with the method's loss gathering negatives from every process.
"""

from __future__ import annotations

import gc
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from sslseg.augment.views import ViewMaker
from sslseg.backbones import IMAGENET_MEAN, IMAGENET_STD, save_encoder
from sslseg.board import Board
from sslseg.devices import autocast, pick_device, resolve_precision
from sslseg.errors import SslsegError
from sslseg.loop import run_epochs
from sslseg.runs import RunDir
from sslseg.ssl.base import Method

OPTIMIZERS = ("adam", "sgd", "lars")
CHECKPOINT = "checkpoint.pt"


@dataclass
class TrainSettings:
    """What the loop needs besides the method, the images and the views."""

    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.06
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: float = 1.0
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    channels_last: bool = True
    compile: bool = False
    progress: bool = True
    tensorboard: bool = False
    #: how often (steps) the running loss is checked for NaN/inf on an accelerator; every
    #: check is a host-device sync. On a CPU every step is checked (it costs nothing).
    check_every: int = 20


# ---------------------------------------------------------------- distributed helpers


def world() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed(device: str = "auto") -> tuple[int, int]:
    """Join the process group ``torchrun`` describes in the environment (no-op without it).

    NCCL on CUDA, gloo on CPU. Returns (rank, world size).
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or (dist.is_initialized()):
        return world()
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if use_cuda else "gloo")
    return world()


def close_distributed() -> None:
    """Leave the process group cleanly (no-op outside one).

    DDP wrappers sit in reference cycles, so without a collection they and the gloo group they
    hold are freed during interpreter shutdown, in no fixed order: now and then a process then
    dies with ``terminate called without an active exception`` (SIGABRT) after its work is
    done. Collecting them first, then meeting the other processes, then destroying the group
    makes the exit the same every time.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()


# ---------------------------------------------------------------- optimisation


def param_groups(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weights with decay; biases and norm parameters (ndim <= 1) without."""
    decay, no_decay = [], []
    for p in module.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(module: nn.Module, s: TrainSettings) -> torch.optim.Optimizer:
    """Adam, SGD with momentum, or LARS over :func:`param_groups`."""
    groups = param_groups(module, s.weight_decay)
    # multi-tensor updates: 1.03x the per-parameter loop on the SimCLR R18 step (2-core CPU,
    # docs/results/step-options.txt); the same arithmetic, grouped
    if s.optimizer == "adam":
        return torch.optim.Adam(groups, lr=s.lr, foreach=True)
    if s.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=s.lr, momentum=s.momentum, foreach=True)
    if s.optimizer == "lars":
        from lightly.utils.lars import LARS

        return LARS(groups, lr=s.lr, momentum=s.momentum)
    raise SslsegError(
        f"config: optimizer: unknown optimizer '{s.optimizer}' "
        f"(choose from {', '.join(OPTIMIZERS)})"
    )


def warmup_cosine(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """LR multiplier: linear warm-up over ``warmup_steps``, then cosine decay to 0."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        span = max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup_steps) / span)))

    return factor


# ---------------------------------------------------------------- the loop


def _epoch_seed(seed: int, epoch: int, rank: int, stream: int) -> int:
    # distinct, stable seeds per (run seed, epoch, process, stream)
    return int(np.random.SeedSequence([seed, epoch, rank, stream]).generate_state(1)[0])


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def read_batch(images: np.ndarray, indices: np.ndarray, device: torch.device) -> torch.Tensor:
    """``images[indices]`` as a uint8 ``B x 3 x H x W`` tensor (channels_last) on ``device``."""
    batch = torch.from_numpy(np.ascontiguousarray(images[indices]))
    if device.type == "cuda":
        batch = batch.pin_memory().to(device, non_blocking=True)
    # NHWC memory seen as NCHW: the channels_last layout the model wants, without a copy
    return batch.permute(0, 3, 1, 2)


class PretrainEpochs:
    """The state of one pretraining run and its ``train_one_epoch`` (see ``sslseg.loop``)."""

    def __init__(
        self,
        method: Method,
        images: np.ndarray,
        view_maker: ViewMaker,
        s: TrainSettings,
        run: RunDir | None,
        board: Board | None = None,
    ) -> None:
        self.rank, self.world_size = world()
        self.board = board
        self.device = pick_device(s.device)
        self.precision = resolve_precision(self.device, s.precision)
        self.method, self.images, self.view_maker = method, images, view_maker
        self.s, self.run = s, run
        n = len(images)
        self.steps_per_epoch = n // (s.batch_size * self.world_size)
        if self.steps_per_epoch < 1:
            raise SslsegError(
                f"config: batch_size: {s.batch_size} x {self.world_size} process(es) is "
                f"more than the {n} images of the data"
            )
        self.total_steps = self.steps_per_epoch * s.epochs
        warmup_steps = min(self.total_steps, round(s.warmup_epochs * self.steps_per_epoch))
        method.to(self.device)
        if s.channels_last:
            method.to(memory_format=torch.channels_last)
        self.optimizer = build_optimizer(method, s)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, warmup_cosine(warmup_steps, self.total_steps)
        )
        if s.compile:
            # in place, so state_dict keys (and the export) stay those of torchvision
            method.backbone.compile()
        self.model: nn.Module = method
        if self.world_size > 1:
            self.model = nn.parallel.DistributedDataParallel(
                method, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        # every check is a host-device sync on an accelerator; on a CPU it costs nothing
        self.check_every = 1 if self.device.type == "cpu" else max(1, s.check_every)
        self.memory_format = torch.channels_last if s.channels_last else torch.contiguous_format
        self.desc = f"{method.name} pretrain"

    def state_dict(self) -> dict[str, Any]:
        return {
            "method": self.method.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": _rng_state(),
            "settings": vars(self.s).copy(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.method.load_state_dict(state["method"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])

    def train_one_epoch(self, epoch: int, bar: tqdm) -> dict[str, Any]:
        s, device, steps = self.s, self.device, self.steps_per_epoch
        perm_gen = torch.Generator().manual_seed(_epoch_seed(s.seed, epoch, 0, 0))
        perm = torch.randperm(len(self.images), generator=perm_gen).numpy()
        view_gen = torch.Generator(device=device).manual_seed(
            _epoch_seed(s.seed, epoch, self.rank, 1)
        )
        loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        unchecked = torch.zeros((), device=device, dtype=torch.float64)
        in_chunk = 0
        t0 = time.perf_counter()
        self.model.train()
        for step in range(steps):
            start = (step * self.world_size + self.rank) * s.batch_size
            idx = np.sort(perm[start : start + s.batch_size])
            batch = read_batch(self.images, idx, device)
            views = self.view_maker(batch, torch.from_numpy(idx), view_gen)
            views = [v.contiguous(memory_format=self.memory_format) for v in views]
            if epoch == 0 and step == 0 and self.board is not None:
                self.board.images("views", _shown_views(views))
            with autocast(device, self.precision):
                loss = self.model(views)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            self.method.after_step((epoch * steps + step + 1) / self.total_steps)
            unchecked += loss.detach()
            in_chunk += 1
            if (step + 1) % self.check_every == 0 or step + 1 == steps:
                value = self._check(unchecked, epoch, step)
                loss_sum += unchecked
                unchecked.zero_()
                bar.set_postfix(epoch=epoch + 1, loss=f"{value / in_chunk:.4f}")
                in_chunk = 0
            bar.update()
        seconds = time.perf_counter() - t0
        return {
            "epoch": epoch + 1,
            "loss": float(loss_sum) / steps,
            "lr": self.optimizer.param_groups[0]["lr"],
            "img_s": steps * s.batch_size * self.world_size / seconds,
            "seconds": seconds,
            "steps": steps,
            "compute_precision": self.precision,
        }

    def _check(self, unchecked: torch.Tensor, epoch: int, step: int) -> float:
        """The running loss (averaged over processes); a non-finite one stops the run."""
        if self.world_size > 1:
            dist.all_reduce(unchecked)
            unchecked /= self.world_size
        value = float(unchecked)
        if not math.isfinite(value):
            where = self.run.path(CHECKPOINT) if self.run is not None else "none"
            raise SslsegError(
                f"loss: became {value} at epoch {epoch + 1} step {step + 1} "
                f"(lr {self.optimizer.param_groups[0]['lr']:.3g}); lower lr or check the "
                f"data; last good checkpoint: {where}"
            )
        return value


def _shown_views(views: list[torch.Tensor], n: int = 8) -> torch.Tensor:
    """The first ``n`` images of every view, un-normalised, view after view."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return torch.cat([v[:n].detach().float().cpu() * std + mean for v in views])


def pretrain(
    method: Method,
    images: np.ndarray,
    view_maker: ViewMaker,
    settings: TrainSettings,
    run: RunDir | None = None,
    export_meta: dict[str, Any] | None = None,
    on_epoch_end: Callable[[int, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train ``method`` on ``images`` (``N x S x S x 3`` uint8) and export its backbone.

    With a ``run`` folder: resumes from its checkpoint if there is one, appends one JSON line
    per epoch to ``log.jsonl``, writes ``checkpoint.pt`` every epoch, and at the end
    ``encoder.pt`` + ``encoder.json`` (``export_meta`` plus the epochs done) and
    ``results.json``. Under ``torchrun`` every process calls this; process 0 writes.
    ``on_epoch_end(epoch, record)`` runs after each checkpoint (tests use it to simulate a
    kill). Returns the final summary.
    """
    s = settings
    if s.optimizer not in OPTIMIZERS:
        raise SslsegError(
            f"config: optimizer: unknown optimizer '{s.optimizer}' "
            f"(choose from {', '.join(OPTIMIZERS)})"
        )
    rank, world_size = world()
    board = Board(run if rank == 0 else None, s.tensorboard)
    trainer = PretrainEpochs(method, images, view_maker, s, run, board)

    def after_epoch(epochs_done: int, record: dict[str, Any]) -> None:
        if world_size > 1:
            dist.barrier()
        if on_epoch_end is not None:
            on_epoch_end(epochs_done, record)

    history = run_epochs(
        trainer,
        run,
        s.epochs,
        checkpoint=CHECKPOINT,
        progress=s.progress,
        writer=rank == 0,
        after_epoch=after_epoch,
        board=board,
    )
    board.close()
    summary = {
        "epochs": s.epochs,
        "steps_per_epoch": trainer.steps_per_epoch,
        "final_loss": history[-1]["loss"] if history else None,
        "world_size": world_size,
        "history": history,
    }
    if run is not None and rank == 0:
        export(method, run, {**(export_meta or {}), "epochs": s.epochs})
        if run.read_log():
            summary["history"] = run.read_log()
            summary["final_loss"] = summary["history"][-1]["loss"]
        run.write_json("results.json", summary)
    if world_size > 1:
        dist.barrier()
    return summary


def export(method: Method, run: RunDir, meta: dict[str, Any]) -> Any:
    """Write ``<run>/encoder.pt`` + ``encoder.json`` (torchvision-format backbone, no ``fc``)."""
    meta = {"method": method.name, **meta}
    return save_encoder(method.backbone, run.path("encoder.pt"), meta)
