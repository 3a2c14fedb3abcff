"""Pretraining throughput: sslseg's pipeline vs lightly's usual one vs the model-only ceiling.

In one run, images per second (one image = its two SimCLR views) for

(a) sslseg: index batches read from the decoded uint8 store, views made as whole batches on
    the device (:mod:`sslseg.augment.views`), channels_last, bf16 autocast where the device
    has native bf16 (``--precision auto``; CUDA, or a CPU with AVX-512 BF16 / AMX) with the
    loss in fp32 — the step of :func:`sslseg.ssl.train.pretrain`;
(b) lightly: ``lightly.transforms.SimCLRTransform`` on PIL images in a torch DataLoader with
    worker processes, the same ResNet, projection head, NT-Xent, batch and side, fp32 and
    NCHW, two forward passes as in lightly's SimCLR example. The PIL images are the store's
    already-decoded pixels, so lightly pays no JPEG decoding (its usual folder dataset would);
(c) ceiling: sslseg's own training step (same optimisations) on view tensors already in
    memory — no reading, no augmentation.

(a) and (c) alternate step by step so that load from other processes hits both alike; (b)
runs as one block after its workers are warm. The last line is
``sslseg_img_s=… lightly_img_s=… ceiling_img_s=… ratio_vs_lightly=… fraction_of_ceiling=…``.

    python benchmarks/pretrain_throughput.py [--steps 20] [--warmup 3] [--batch 128] [--side 64]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from sslseg.augment.views import MultiView, simclr_specs
from sslseg.config import PRECISIONS
from sslseg.data.store import open_store
from sslseg.devices import autocast, pick_device, resolve_precision
from sslseg.ssl.registry import build_method
from sslseg.ssl.train import TrainSettings, build_optimizer, read_batch

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cats-vs-dogs"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _make(arch: str, device: torch.device, channels_last: bool):
    torch.manual_seed(0)
    method = build_method("simclr", arch, "imagenet", temperature=0.5).to(device)
    if channels_last:
        method.to(memory_format=torch.channels_last)
    opt = build_optimizer(method, TrainSettings(optimizer="sgd", lr=0.06))
    return method, opt


def bench_sslseg_and_ceiling(images: np.ndarray, args, device: torch.device):
    """Alternate (a) and (c) step by step; returns (sslseg_img_s, ceiling_img_s)."""
    cl = torch.channels_last
    precision = resolve_precision(device, args.precision)
    views = MultiView(simclr_specs(args.side))
    gen = torch.Generator(device=device).manual_seed(0)
    rng = np.random.default_rng(0)
    method_a, opt_a = _make(args.arch, device, True)
    method_c, opt_c = _make(args.arch, device, True)
    idx0 = np.sort(rng.choice(len(images), args.batch, replace=False))
    fixed = [
        v.contiguous(memory_format=cl)
        for v in views(read_batch(images, idx0, device), torch.from_numpy(idx0), gen)
    ]

    def step_a() -> None:
        idx = np.sort(rng.choice(len(images), args.batch, replace=False))
        batch = read_batch(images, idx, device)
        vs = [v.contiguous(memory_format=cl) for v in views(batch, torch.from_numpy(idx), gen)]
        with autocast(device, precision):
            loss = method_a(vs)
        opt_a.zero_grad(set_to_none=True)
        loss.backward()
        opt_a.step()

    def step_c() -> None:
        with autocast(device, precision):
            loss = method_c(fixed)
        opt_c.zero_grad(set_to_none=True)
        loss.backward()
        opt_c.step()

    times = {"a": 0.0, "c": 0.0}
    for i in range(args.warmup + args.steps):
        for name, fn in (("a", step_a), ("c", step_c)) if i % 2 else (("c", step_c), ("a", step_a)):
            _sync(device)
            t = time.perf_counter()
            fn()
            _sync(device)
            if i >= args.warmup:
                times[name] += time.perf_counter() - t
    n = args.steps * args.batch
    return n / times["a"], n / times["c"]


class _PilDataset(torch.utils.data.Dataset):
    """The store's decoded images as PIL images through lightly's transform."""

    def __init__(self, images: np.ndarray, transform) -> None:
        self.images, self.transform = images, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        from PIL import Image

        return self.transform(Image.fromarray(np.asarray(self.images[i])))


def bench_lightly(images: np.ndarray, args, device: torch.device) -> float:
    from lightly.transforms import SimCLRTransform

    method, opt = _make(args.arch, device, False)
    data = _PilDataset(images, SimCLRTransform(input_size=args.side))
    loader = torch.utils.data.DataLoader(
        data,
        batch_size=args.batch,
        shuffle=True,
        num_workers=args.workers,
        drop_last=True,
        persistent_workers=args.workers > 0,
        pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(0),
    )
    it = iter(loader)
    elapsed = 0.0
    for i in range(args.warmup + args.steps):
        _sync(device)
        t = time.perf_counter()
        try:
            x0, x1 = next(it)
        except StopIteration:
            it = iter(loader)
            x0, x1 = next(it)
        x0, x1 = x0.to(device, non_blocking=True), x1.to(device, non_blocking=True)
        z0 = method.projection(method.backbone(x0).flatten(1))
        z1 = method.projection(method.backbone(x1).flatten(1))
        loss = method.criterion(z0, z1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _sync(device)
        if i >= args.warmup:
            elapsed += time.perf_counter() - t
    del it, loader
    return args.steps * args.batch / elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default=str(DATA))
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--side", type=int, default=64)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=20, help="timed steps per pipeline")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help="sslseg's step (a, c); auto = bf16 where the device has it natively",
    )
    args = p.parse_args()
    device = pick_device(args.device)
    store = open_store("cats-vs-dogs", args.root, side=args.side, progress=False)
    images = np.asarray(store.images)  # in memory for all three, like a warm page cache
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"device={device} threads={torch.get_num_threads()} arch={args.arch} "
        f"side={args.side} batch={args.batch} steps={args.steps} workers={args.workers} "
        f"precision={resolve_precision(device, args.precision)} load_before={load:.2f}",
        flush=True,
    )
    sslseg, ceiling = bench_sslseg_and_ceiling(images, args, device)
    print(f"sslseg {sslseg:.1f} img/s, ceiling {ceiling:.1f} img/s", flush=True)
    lightly = bench_lightly(images, args, device)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"lightly {lightly:.1f} img/s; load_after={load:.2f}", flush=True)
    print(
        f"sslseg_img_s={sslseg:.1f} lightly_img_s={lightly:.1f} ceiling_img_s={ceiling:.1f} "
        f"ratio_vs_lightly={sslseg / lightly:.3f} fraction_of_ceiling={sslseg / ceiling:.3f}"
    )


if __name__ == "__main__":
    main()
