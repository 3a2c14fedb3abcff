"""What each option of the model step gives: optimiser implementation and ``torch.compile``.

The step alone (views / batches already in memory), so only the step's own cost is measured:

- ``pretrain``: SimCLR ResNet-18 (sslseg's method: one forward of both views, NT-Xent in fp32),
  SGD momentum 0.9 over sslseg's parameter groups, at ``--side`` 64, batch 128;
- ``finetune``: U-Net ResNet-18 (smp), masked BCE in fp32, Adam 1e-4, 128 px, batch 16.

Variants: ``loop`` (torch's per-parameter for-loop, its CPU default), ``foreach`` (multi-tensor),
``fused`` (one fused kernel), each with and without ``compile`` (inductor, in place on the
model; the seconds of the first ``--warmup`` steps, which include compiling, are reported as
``warm_s``). Each measurement runs in a process of its own, ``--repeats`` times interleaved;
figures are medians. Last lines, one per stage::

    stage=pretrain precision=bf16 loop_img_s=… foreach_img_s=… fused_img_s=…
    compile_loop_img_s=… compile_fused_img_s=… compile_warm_s=… best=…

    python benchmarks/step_options.py [--stage both] [--precision bf16] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

# run as a script, so its folder is on sys.path
from harness import images_per_second, run_child
from sslseg.devices import autocast, pick_device, resolve_precision
from sslseg.seg.finetune import train_step
from sslseg.seg.unet import build_unet
from sslseg.ssl.registry import build_method
from sslseg.ssl.train import param_groups

VARIANTS = ("loop", "foreach", "fused", "compile_loop", "compile_fused")
IMPL = {"loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def _pretrain_step(variant: str, device: torch.device, precision: str, side: int, batch: int):
    cl = torch.channels_last
    method = build_method("simclr", "resnet18", "imagenet", temperature=0.5).to(device)
    method.to(memory_format=cl)
    impl = IMPL[variant.removeprefix("compile_")]
    opt = torch.optim.SGD(param_groups(method, 5e-4), lr=0.06, momentum=0.9, **impl)
    if variant.startswith("compile"):
        method.backbone.compile()
    gen = torch.Generator(device=device).manual_seed(0)
    views = [
        torch.rand(batch, 3, side, side, generator=gen, device=device).contiguous(memory_format=cl)
        for _ in range(2)
    ]

    def step() -> None:
        with autocast(device, precision):
            loss = method(views)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def _finetune_step(variant: str, device: torch.device, precision: str, side: int, batch: int):
    cl = torch.channels_last
    model = build_unet("resnet18", "random").to(device=device, memory_format=cl)
    impl = IMPL[variant.removeprefix("compile_")]
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, **impl)
    if variant.startswith("compile"):
        model.compile()
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(batch, 3, side, side, generator=gen, device=device).contiguous(memory_format=cl)
    y = (torch.rand(batch, side, side, generator=gen, device=device) < 0.4).to(torch.uint8)

    def step() -> None:
        train_step(model, opt, x, y, precision)

    return step


STAGES = {"pretrain": (_pretrain_step, 64, 128), "finetune": (_finetune_step, 128, 16)}


def measure_one(args) -> None:
    device = pick_device(args.device)
    precision = resolve_precision(device, args.precision)
    make, side, batch = STAGES[args.stage]
    torch.manual_seed(0)
    step = make(args.only, device, precision, side, batch)
    tic = time.perf_counter()
    img_s = images_per_second(step, args.warmup, args.steps, batch, device)
    total = time.perf_counter() - tic
    warm_s = total - args.steps * batch / img_s
    print(f"img_s={img_s:.2f} warm_s={warm_s:.1f}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stage", default="both", choices=("both", *STAGES))
    p.add_argument("--precision", default="bf16", choices=("auto", "fp32", "bf16"))
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--device", default="auto")
    p.add_argument("--only", choices=VARIANTS, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.only:
        measure_one(args)
        return
    variants = args.variants.split(",")
    stages = tuple(STAGES) if args.stage == "both" else (args.stage,)
    device = pick_device(args.device)
    print(
        f"device={device} threads={torch.get_num_threads()} steps={args.steps} "
        f"warmup={args.warmup} repeats={args.repeats}",
        flush=True,
    )
    for stage in stages:
        runs: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
        flags = [
            "--stage",
            stage,
            "--precision",
            args.precision,
            "--device",
            args.device,
            "--steps",
            str(args.steps),
            "--warmup",
            str(args.warmup),
        ]
        for r in range(args.repeats):
            for v in variants:
                runs[v].append(run_child(__file__, ["--only", v, *flags]))
                last = runs[v][-1]
                print(
                    f"stage={stage} repeat={r} {v} {last['img_s']:.1f} img/s "
                    f"warm {last['warm_s']:.1f} s",
                    flush=True,
                )
        med = {v: statistics.median(m["img_s"] for m in runs[v]) for v in variants}
        warm = [m["warm_s"] for v in variants if v.startswith("compile") for m in runs[v]]
        line = " ".join(f"{v}_img_s={med[v]:.1f}" for v in variants)
        extra = f" compile_warm_s={max(warm):.1f}" if warm else ""
        print(
            f"stage={stage} precision={resolve_precision(device, args.precision)} {line}"
            f"{extra} best={max(med, key=med.get)}",
            flush=True,
        )


if __name__ == "__main__":
    main()
