"""Fine-tuning throughput at equal precision: sslseg's loop against a plain smp script.

(a) plain: a torch DataLoader over PIL (decode JPEG + trimap, resize, to tensor, no
    augmentation) in worker processes, smp U-Net — what a user writes by hand — given the same
    memory format (channels_last model and inputs) and the same step at the same precision
    (:func:`sslseg.seg.finetune.train_step`: autocast around the forward, BCE in fp32);
(b) sslseg: batches of indices from the decoded uint8 store, flip augmentation on tensors;
(c) ceiling: sslseg's model step alone on a batch already in memory.
Same model (U-Net ResNet-18, random init), side, batch, BCE and Adam 1e-4 (sslseg: its fused
Adam, `sslseg.seg.finetune.build_optimizer`; plain: `torch.optim.Adam` as users write it).

Each measurement runs in a process of its own, ``--repeats`` times interleaved; figures are
medians, with each side's peak RSS (DataLoader workers apart). For each precision
(``--precision both``: fp32 then bf16) a last line
``precision=… plain_img_s=… sslseg_img_s=… ceiling_img_s=… speedup=… fraction_of_ceiling=…
plain_rss_mb=… plain_workers_rss_mb=… sslseg_rss_mb=…``.

    python benchmarks/finetune_throughput.py [--steps 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

# run as a script, so its folder is on sys.path
from harness import images_per_second, interleaved, report_child, run_child
from sslseg.backbones import IMAGENET_MEAN, IMAGENET_STD
from sslseg.data.store import open_store
from sslseg.devices import pick_device, resolve_precision
from sslseg.seg.finetune import BatchLoader, build_optimizer, flip_batch, train_step
from sslseg.seg.unet import build_unet

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "oxford-iiit-pet"
PIPELINES = ("plain", "sslseg", "ceiling")


class PlainPet(Dataset):
    def __init__(self, root: Path, side: int) -> None:
        self.images = sorted((root / "images").glob("*.jpg"))
        self.root, self.side = root, side

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        path = self.images[i]
        image = Image.open(path).convert("RGB").resize((self.side, self.side), Image.BILINEAR)
        trimap = Image.open(self.root / "annotations" / "trimaps" / f"{path.stem}.png")
        trimap = np.asarray(trimap.resize((self.side, self.side), Image.NEAREST))
        x = torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255
        x = (x - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(
            3, 1, 1
        )
        return x, torch.from_numpy((trimap != 2).astype(np.uint8))


def _model(device: torch.device, plain: bool):
    torch.manual_seed(0)
    model = build_unet("resnet18").to(device, memory_format=torch.channels_last)
    if plain:  # as smp's examples write it
        return model, torch.optim.Adam(model.parameters(), lr=1e-4)
    return model, build_optimizer(model, 1e-4)


def measure_one(args) -> None:
    """Child process: one pipeline at one precision; prints its figure and peak RSS."""
    device = pick_device(args.device)
    precision = resolve_precision(device, args.precision)
    model, optimizer = _model(device, plain=args.only == "plain")
    cl = torch.channels_last
    if args.only == "plain":
        loader = DataLoader(
            PlainPet(Path(args.root), args.side),
            batch_size=args.batch,
            shuffle=True,
            num_workers=args.workers,
            drop_last=True,
            persistent_workers=args.workers > 0,
        )
        batches = iter(loader)

        def step() -> None:
            nonlocal batches
            try:
                x, y = next(batches)
            except StopIteration:
                batches = iter(loader)
                x, y = next(batches)
            x = x.to(device).contiguous(memory_format=cl)
            train_step(model, optimizer, x, y.to(device), precision)

    else:
        store = open_store("oxford-pet", args.root, args.side, progress=False)
        load = BatchLoader(store, device, channels_last=True)
        rng = np.random.default_rng(0)
        generator = torch.Generator().manual_seed(0)
        fixed = load(np.arange(args.batch))

        def step() -> None:
            if args.only == "ceiling":
                train_step(model, optimizer, *fixed, precision)
                return
            x, y = load(rng.choice(len(store), args.batch, replace=False))
            train_step(model, optimizer, *flip_batch(x, y, generator), precision)

    report_child(images_per_second(step, args.warmup, args.steps, args.batch, device))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(DATA))
    parser.add_argument("--side", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="measurements per pipeline")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--precision", default="both", choices=("both", "auto", "fp32", "bf16"), help="of all"
    )
    parser.add_argument("--only", choices=PIPELINES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        measure_one(args)
        return
    device = pick_device(args.device)
    load = os.getloadavg()[0]
    print(
        f"device={device} threads={torch.get_num_threads()} side={args.side} batch={args.batch} "
        f"steps={args.steps} repeats={args.repeats} workers={args.workers} load_before={load:.2f}"
    )
    keys = ("root", "side", "batch", "steps", "warmup", "workers", "device")
    flags = [x for k in keys for x in (f"--{k}", str(getattr(args, k)))]
    lines = []
    for precision in ("fp32", "bf16") if args.precision == "both" else (args.precision,):
        med, rss, workers = interleaved(
            lambda name, p=precision: run_child(
                __file__, ["--only", name, "--precision", p, *flags]
            ),
            PIPELINES,
            args.repeats,
            f"precision={precision}",
        )
        lines.append(
            f"precision={resolve_precision(device, precision)} plain_img_s={med['plain']:.2f} "
            f"sslseg_img_s={med['sslseg']:.2f} ceiling_img_s={med['ceiling']:.2f} "
            f"speedup={med['sslseg'] / med['plain']:.3f} "
            f"fraction_of_ceiling={med['sslseg'] / med['ceiling']:.3f} "
            f"plain_rss_mb={rss['plain']:.0f} plain_workers_rss_mb={workers['plain']:.0f} "
            f"sslseg_rss_mb={rss['sslseg']:.0f}"
        )
    print(f"load_after={os.getloadavg()[0]:.2f}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
