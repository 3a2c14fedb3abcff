"""Pretraining throughput at equal precision: sslseg vs lightly's pipeline vs the ceiling.

Images per second (one image = its two SimCLR views), ResNet-18 SimCLR at the same side,
batch, head, NT-Xent temperature, SGD, precision and memory format on both sides:

(a) sslseg: index batches read from the decoded uint8 store, views made as whole batches on
    the device (:mod:`sslseg.augment.views`), one forward of both views — the step of
    :func:`sslseg.ssl.train.pretrain`, loss in fp32;
(b) lightly, as its users write it: ``lightly.transforms.SimCLRTransform`` on PIL images in a
    torch DataLoader with worker processes, ``SimCLRProjectionHead`` and ``NTXentLoss``, two
    forward passes as in lightly's SimCLR example — given the same precision (bf16 autocast
    around the forwards and the loss, as torch's AMP docs write it) and memory format
    (channels_last model and inputs) as sslseg. The PIL images are the store's decoded
    pixels, so lightly pays no JPEG decoding (its usual folder dataset would);
(c) ceiling: sslseg's step on view tensors already in memory — no reading, no augmentation.

Each measurement runs in a process of its own (so its peak RSS is its own; DataLoader workers
are reported apart), ``--repeats`` times interleaved a, b, c, a, b, c, ...; the figure is the
median. For each precision (``--precision both``: fp32 then bf16) the last lines are
``precision=… sslseg_img_s=… lightly_img_s=… ceiling_img_s=… ratio_vs_lightly=…
fraction_of_ceiling=… sslseg_rss_mb=… lightly_rss_mb=… lightly_workers_rss_mb=…``.

    python benchmarks/pretrain_throughput.py [--steps 20] [--warmup 3] [--repeats 3]

``--method`` (default ``simclr``, the pipelines above) times another method the same way, in one
session, interleaved: sslseg's module of that method on its own views (its momentum update in
the step), against the lightly pipeline of ``benchmarks/pretrain_quality.py`` for it (lightly's
transform recipe for the side, its heads and loss, as lightly's CIFAR-10 benchmark has them),
so the pretraining-quality table's epoch times, taken in runs made at different times, get a
same-session check. Lines then start with ``method=…``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch

# run as a script, so its folder is on sys.path
from harness import images_per_second, interleaved, report_child, run_child
from sslseg.augment.views import MultiView
from sslseg.data.store import open_store
from sslseg.devices import autocast, pick_device, resolve_precision
from sslseg.ssl.registry import REGISTRY, build_method
from sslseg.ssl.train import TrainSettings, build_optimizer, read_batch

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cats-vs-dogs"
PIPELINES = ("sslseg", "lightly", "ceiling")


def _make(arch: str, device: torch.device, channels_last: bool, name: str = "simclr"):
    torch.manual_seed(0)
    options = {"temperature": 0.5} if name == "simclr" else {}  # lightly NTXentLoss's 0.5
    method = build_method(name, arch, "imagenet", **options).to(device)
    if channels_last:
        method.to(memory_format=torch.channels_last)
    opt = build_optimizer(method, TrainSettings(optimizer="sgd", lr=0.06))
    return method, opt


def bench_sslseg(images: np.ndarray, args, device: torch.device, precision: str, fixed: bool):
    """(a), or with ``fixed`` (c): the same step on one batch of views made beforehand."""
    cl = torch.channels_last
    gen = torch.Generator(device=device).manual_seed(0)
    rng = np.random.default_rng(0)
    method, opt = _make(args.arch, device, True, args.method)
    views = MultiView(type(method).view_specs(args.side))

    def make_views() -> list[torch.Tensor]:
        idx = np.sort(rng.choice(len(images), args.batch, replace=False))
        batch = read_batch(images, idx, device)
        return [v.contiguous(memory_format=cl) for v in views(batch, torch.from_numpy(idx), gen)]

    ready = make_views()

    def step() -> None:
        vs = ready if fixed else make_views()
        with autocast(device, precision):
            loss = method(vs)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        method.after_step(0.5)  # the momentum update of MoCo / BYOL (a no-op elsewhere)

    return images_per_second(step, args.warmup, args.steps, args.batch, device)


def _lightly_batches(images: np.ndarray, transform, args, device: torch.device):
    """Endless batches of lightly's ``transform`` views, as its users load them: a shuffling
    DataLoader over PIL images with worker processes, restarted at each epoch's end."""
    from pretrain_quality import PilImages

    loader = torch.utils.data.DataLoader(
        PilImages(images, transform),
        batch_size=args.batch,
        shuffle=True,
        num_workers=args.workers,
        drop_last=True,
        persistent_workers=args.workers > 0,
        pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(0),
    )
    while True:
        yield from loader


def bench_lightly_method(images: np.ndarray, args, device: torch.device, precision: str) -> float:
    """lightly's pipeline for ``args.method`` as ``pretrain_quality.py`` trains it."""
    from pretrain_quality import LightlyModel, lightly_step, lightly_transform
    from sslseg.backbones import FEATURE_DIMS, build_resnet

    torch.manual_seed(0)
    model = LightlyModel(args.method, build_resnet(args.arch, "imagenet"), FEATURE_DIMS[args.arch])
    model.to(device).to(memory_format=torch.channels_last)
    opt = build_optimizer(model, TrainSettings(optimizer="sgd", lr=0.06))
    batches = _lightly_batches(images, lightly_transform(args.method, args.side), args, device)

    def step() -> None:
        lightly_step(model, opt, next(batches), device, precision)

    return images_per_second(step, args.warmup, args.steps, args.batch, device)


def bench_lightly(images: np.ndarray, args, device: torch.device, precision: str) -> float:
    if args.method != "simclr":
        return bench_lightly_method(images, args, device, precision)
    from lightly.transforms import SimCLRTransform

    cl = torch.channels_last
    method, opt = _make(args.arch, device, True)
    batches = _lightly_batches(images, SimCLRTransform(input_size=args.side), args, device)

    def step() -> None:
        x0, x1 = next(batches)
        x0 = x0.to(device, non_blocking=True).contiguous(memory_format=cl)
        x1 = x1.to(device, non_blocking=True).contiguous(memory_format=cl)
        with autocast(device, precision):
            z0 = method.projection(method.backbone(x0).flatten(1))
            z1 = method.projection(method.backbone(x1).flatten(1))
            loss = method.criterion(z0, z1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return images_per_second(step, args.warmup, args.steps, args.batch, device)


def measure_one(args) -> None:
    """Child process: one pipeline at one precision; prints its figure and peak RSS."""
    device = pick_device(args.device)
    precision = resolve_precision(device, args.precision)
    store = open_store("cats-vs-dogs", args.root, side=args.side, progress=False)
    images = np.asarray(store.images)  # in memory for every pipeline, like a warm page cache
    if args.only == "lightly":
        img_s = bench_lightly(images, args, device, precision)
    else:
        img_s = bench_sslseg(images, args, device, precision, fixed=args.only == "ceiling")
    report_child(img_s)


def _child(args, pipeline: str, precision: str) -> dict[str, float]:
    keys = ("root", "arch", "side", "batch", "steps", "warmup", "workers", "device", "method")
    flags = [x for k in keys for x in (f"--{k}", str(getattr(args, k)))]
    return run_child(__file__, ["--only", pipeline, "--precision", precision, *flags])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default=str(DATA))
    p.add_argument("--method", default="simclr", choices=list(REGISTRY))
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--side", type=int, default=64)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3, help="measurements per pipeline (median)")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--precision",
        default="both",
        choices=("both", "auto", "fp32", "bf16"),
        help="of every pipeline; both = fp32 then bf16",
    )
    p.add_argument("--only", choices=PIPELINES, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.only:
        measure_one(args)
        return
    device = pick_device(args.device)
    precisions = ("fp32", "bf16") if args.precision == "both" else (args.precision,)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"device={device} threads={torch.get_num_threads()} method={args.method} "
        f"arch={args.arch} side={args.side} "
        f"batch={args.batch} steps={args.steps} warmup={args.warmup} repeats={args.repeats} "
        f"workers={args.workers} load_before={load:.2f}",
        flush=True,
    )
    lines = []
    for precision in precisions:
        med, rss, workers = interleaved(
            lambda name, p=precision: _child(args, name, p),
            PIPELINES,
            args.repeats,
            f"precision={precision}",
        )
        named = "" if args.method == "simclr" else f"method={args.method} "
        lines.append(
            f"{named}precision={resolve_precision(device, precision)} "
            f"sslseg_img_s={med['sslseg']:.1f} "
            f"lightly_img_s={med['lightly']:.1f} ceiling_img_s={med['ceiling']:.1f} "
            f"ratio_vs_lightly={med['sslseg'] / med['lightly']:.3f} "
            f"fraction_of_ceiling={med['sslseg'] / med['ceiling']:.3f} "
            f"sslseg_rss_mb={rss['sslseg']:.0f} lightly_rss_mb={rss['lightly']:.0f} "
            f"lightly_workers_rss_mb={workers['lightly']:.0f}"
        )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load_after={load:.2f}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
