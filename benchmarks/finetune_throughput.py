"""Fine-tuning throughput: sslseg's loop against a plain smp script, in one run.

(a) plain: a torch DataLoader over PIL (decode JPEG + trimap, resize, to tensor, no
    augmentation), smp U-Net in fp32 with the default memory format — what a user writes by hand;
(b) sslseg: batches of indices from the decoded uint8 store, flip augmentation on tensors,
    channels_last, bf16 autocast where the device has native bf16 (``--precision``);
(c) ceiling: sslseg's model step alone on a batch already in memory.
Same model (U-Net ResNet-18, random init), side, batch, BCE and Adam 1e-4.

    python benchmarks/finetune_throughput.py --root ../shared/data/oxford-iiit-pet
Last line: plain_img_s=... sslseg_img_s=... ceiling_img_s=... speedup=...
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from sslseg.config import PRECISIONS
from sslseg.data.store import open_store
from sslseg.devices import pick_device, resolve_precision
from sslseg.seg.finetune import BatchLoader, flip_batch, train_step
from sslseg.seg.unet import IMAGENET_MEAN, IMAGENET_STD, build_unet


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


def timed(steps, warmup: int, measured: int, batch: int) -> float:
    for _ in range(warmup):
        steps()
    tic = time.perf_counter()
    for _ in range(measured):
        steps()
    return batch * measured / (time.perf_counter() - tic)


def make_step(model, optimizer, precision: str = "fp32"):
    def step(x, y):
        train_step(model, optimizer, x, y, precision)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("../shared/data/oxford-iiit-pet"))
    parser.add_argument("--side", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help="sslseg's step (b, c); auto = bf16 where the device has it natively",
    )
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    device = pick_device("auto")
    precision = resolve_precision(device, args.precision)
    print(
        f"device={device} threads={torch.get_num_threads()} side={args.side} "
        f"batch={args.batch} precision={precision}"
    )

    torch.manual_seed(0)
    model = build_unet("resnet18").to(device)
    step = make_step(model, torch.optim.Adam(model.parameters(), lr=1e-4))
    loader = DataLoader(
        PlainPet(args.root, args.side),
        batch_size=args.batch,
        shuffle=True,
        num_workers=args.workers,
        drop_last=True,
        persistent_workers=True,
    )
    batches = iter(loader)

    def plain_step():
        nonlocal batches
        try:
            x, y = next(batches)
        except StopIteration:
            batches = iter(loader)
            x, y = next(batches)
        step(x.to(device), y.to(device))

    plain = timed(plain_step, 2, args.steps, args.batch)
    print(f"plain smp + PIL DataLoader: {plain:.2f} img/s")

    store = open_store("oxford-pet", args.root, args.side)
    torch.manual_seed(0)
    model = build_unet("resnet18").to(device, memory_format=torch.channels_last)
    step = make_step(model, torch.optim.Adam(model.parameters(), lr=1e-4), precision)
    load = BatchLoader(store, device, channels_last=True)
    rng = np.random.default_rng(0)
    generator = torch.Generator().manual_seed(0)

    def sslseg_step():
        x, y = load(rng.choice(len(store), args.batch, replace=False))
        step(*flip_batch(x, y, generator))

    ours = timed(sslseg_step, 2, args.steps, args.batch)
    print(f"sslseg store + tensor flips + channels_last + {precision}: {ours:.2f} img/s")
    x, y = load(np.arange(args.batch))
    ceiling = timed(lambda: step(x, y), 2, args.steps, args.batch)
    print(f"model-only step (channels_last, {precision}): {ceiling:.2f} img/s")
    print(
        f"plain_img_s={plain:.2f} sslseg_img_s={ours:.2f} ceiling_img_s={ceiling:.2f} "
        f"speedup={ours / plain:.2f}"
    )


if __name__ == "__main__":
    main()
