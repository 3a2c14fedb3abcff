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
from sslseg.backbones import save_encoder
from sslseg.devices import autocast, pick_device, resolve_precision
from sslseg.errors import SslsegError
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
    device = pick_device(s.device)
    precision = resolve_precision(device, s.precision)
    n = len(images)
    steps_per_epoch = n // (s.batch_size * world_size)
    if steps_per_epoch < 1:
        raise SslsegError(
            f"config: batch_size: {s.batch_size} x {world_size} process(es) is "
            f"more than the {n} images of the data"
        )
    total_steps = steps_per_epoch * s.epochs
    warmup_steps = min(total_steps, round(s.warmup_epochs * steps_per_epoch))

    method.to(device)
    if s.channels_last:
        method.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(method, s)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(warmup_steps, total_steps)
    )

    start_epoch = 0
    if run is not None:
        ckpt = run.load(CHECKPOINT)
        if ckpt is not None:
            method.load_state_dict(ckpt["method"])
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            _set_rng_state(ckpt["rng"])
            start_epoch = int(ckpt["epoch"])
            if rank == 0:
                run.truncate_log(start_epoch + 1)

    if s.compile:
        # in place, so state_dict keys (and the export) stay those of torchvision
        method.backbone.compile()
    model: nn.Module = method
    if world_size > 1:
        model = nn.parallel.DistributedDataParallel(
            method, device_ids=[device.index] if device.type == "cuda" else None
        )

    check_every = 1 if device.type == "cpu" else max(1, s.check_every)
    memory_format = torch.channels_last if s.channels_last else torch.contiguous_format

    bar = tqdm(
        total=total_steps,
        initial=start_epoch * steps_per_epoch,
        unit="step",
        desc=f"{method.name} pretrain",
        disable=not s.progress or rank != 0,
        dynamic_ncols=True,
    )
    record: dict[str, Any] = {}
    history: list[dict[str, Any]] = []
    model.train()
    for epoch in range(start_epoch, s.epochs):
        perm_gen = torch.Generator().manual_seed(_epoch_seed(s.seed, epoch, 0, 0))
        perm = torch.randperm(n, generator=perm_gen).numpy()
        view_gen = torch.Generator(device=device).manual_seed(_epoch_seed(s.seed, epoch, rank, 1))
        loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        unchecked = torch.zeros((), device=device, dtype=torch.float64)
        in_chunk = 0
        t0 = time.perf_counter()
        for step in range(steps_per_epoch):
            start = (step * world_size + rank) * s.batch_size
            idx = np.sort(perm[start : start + s.batch_size])
            batch = read_batch(images, idx, device)
            views = view_maker(batch, torch.from_numpy(idx), view_gen)
            views = [v.contiguous(memory_format=memory_format) for v in views]
            with autocast(device, precision):
                loss = model(views)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            method.after_step((epoch * steps_per_epoch + step + 1) / total_steps)
            unchecked += loss.detach()
            in_chunk += 1
            if (step + 1) % check_every == 0 or step + 1 == steps_per_epoch:
                if world_size > 1:
                    dist.all_reduce(unchecked)
                    unchecked /= world_size
                value = float(unchecked)
                if not math.isfinite(value):
                    bar.close()
                    where = run.path(CHECKPOINT) if run is not None else "none"
                    raise SslsegError(
                        f"loss: became {value} at epoch {epoch + 1} step {step + 1} "
                        f"(lr {optimizer.param_groups[0]['lr']:.3g}); lower lr or check the "
                        f"data; last good checkpoint: {where}"
                    )
                loss_sum += unchecked
                unchecked.zero_()
                bar.set_postfix(epoch=epoch + 1, loss=f"{value / in_chunk:.4f}")
                in_chunk = 0
            bar.update()
        seconds = time.perf_counter() - t0
        record = {
            "epoch": epoch + 1,
            "loss": float(loss_sum) / steps_per_epoch,
            "lr": optimizer.param_groups[0]["lr"],
            "img_s": steps_per_epoch * s.batch_size * world_size / seconds,
            "seconds": seconds,
            "steps": steps_per_epoch,
            "compute_precision": precision,
        }
        history.append(record)
        if run is not None and rank == 0:
            # log first: a kill before the checkpoint is written makes the resumed run redo
            # this epoch, and truncate_log drops the duplicate line
            run.append_log(record)
            run.save(
                CHECKPOINT,
                {
                    "method": method.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "rng": _rng_state(),
                    "epoch": epoch + 1,
                    "settings": vars(s).copy(),
                },
            )
        if world_size > 1:
            dist.barrier()
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, record)
    bar.close()

    summary = {
        "epochs": s.epochs,
        "steps_per_epoch": steps_per_epoch,
        "final_loss": record.get("loss"),
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
