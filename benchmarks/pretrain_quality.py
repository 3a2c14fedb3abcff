"""Pretraining quality at an equal budget: sslseg vs lightly's own pipeline vs random init.

For one method (``--method``), on the same CIFAR-10 training images, with the same backbone
(sslseg's torchvision ResNet and stem, the same initial weights), view side, batch, epochs,
optimiser (sslseg's SGD/Adam/LARS with its no-decay groups), schedule (warm-up + cosine per
step) and precision (bf16 autocast around the forwards, channels_last model and inputs, the
loss in fp32 on both sides):

(a) **sslseg**: :func:`sslseg.ssl.command.pretrain_encoder` on a :class:`PretrainConfig` —
    the user's path: the decoded store, the batched views of the method's ``view_specs``
    (chosen by the view side), the generic loop, the exported ``encoder.pt``;
(b) **lightly**: a pipeline built only from lightly's parts as its examples and its CIFAR-10
    benchmark (``docs/source/getting_started/benchmarks/cifar10_benchmark.py``) use them: its
    transform for the method on PIL images in a torch DataLoader with worker processes, its
    heads, its loss, its momentum update (``update_momentum`` before the forward, m = 0.99, as
    the benchmark). At a view side of at most 96 px the transform is the benchmark's CIFAR-10
    recipe (below), above it lightly's default for the method. The heads are the benchmark's
    (SimCLR 512-512-128, MoCo 512-512-128 with ``NTXentLoss(temperature=0.1,
    memory_bank_size=4096)``, BYOL 512-1024-256, SimSiam 512-2048-2048 + 2048-512-2048, SwAV
    512-512-128 with 512 prototypes, Barlow Twins 512-2048-2048). The PIL images are the
    store's decoded pixels, so both sides see the same pixels;
(c) **random**: the same architecture and stem, not trained (the starting point of both).

A diagnosis switch, ``--lightly-model sslseg``: part (b) keeps lightly's views and DataLoader
but trains sslseg's method module (its heads, loss and momentum schedule, with
``--method-options``) in place of lightly's heads, so a gap between (a) and (b) is split into
the views' share and the model's.

All three are scored by ONE evaluator on held-out labelled CIFAR-10 test images: sslseg's
kNN (k = 200, t = 0.1, :func:`sslseg.eval.knn.knn_accuracy`) and linear probe
(:func:`sslseg.eval.linear.linear_curve` at 10 % and 100 % of the training labels) on frozen
pooled features (:func:`sslseg.eval.features.extract_features`) of the training images (the
bank) and the test images.

lightly's CIFAR-10 recipes (<= 96 px; ``side`` for 32):

=============  =====================================================================================
method         transform
=============  =====================================================================================
simclr         ``SimCLRTransform(input_size=side, cj_strength=0.5, gaussian_blur=0.0)``
moco           ``MoCoV2Transform(input_size=side, min_scale=0.08, gaussian_blur=0.0)``: the
               benchmark's MoCo transform, ``SimCLRTransform(cj_strength=0.5, gaussian_blur=0)``,
               has exactly these values (jitter 0.8 x 0.5 = MoCo v2's 0.4, hue 0.1)
byol           ``BYOLTransform(BYOLView1Transform(input_size=side, gaussian_blur=0.0),
               BYOLView2Transform(input_size=side, gaussian_blur=0.0))``
simsiam        ``SimSiamTransform(input_size=side, gaussian_blur=0.0)``
swav           ``SwaVTransform(crop_sizes=[side], crop_counts=[2], crop_min_scales=[0.14],
               crop_max_scales=[1.0], cj_strength=0.5, gaussian_blur=0)``
barlow_twins   BYOL's transform without blur (lightly's ``barlowtwins`` example and benchmark)
=============  =====================================================================================

Resumable per part: ``--out/<method>/`` keeps ``settings.json`` (a folder for another budget is
refused), the sslseg run folder (resumed from its last epoch by ``pretrain_encoder``), the
lightly part's per-epoch checkpoint (resumed at the next epoch; its DataLoader's draws after a
resume differ from an uninterrupted run), and one ``<part>.json`` per finished part, which a
rerun reads instead of training again (delete it to redo that part). ``*_s`` is the wall time
of the training epochs (the loop, data loading included; checkpoint writes and evaluation not);
``median_epoch_s`` the median epoch, which a moment of contention on a shared machine leaves
alone.
The last line is::

    method=… epochs=… sslseg_knn=… lightly_knn=… random_knn=… sslseg_linear=… lightly_linear=…
    sslseg_s=… lightly_s=…

(accuracies as fractions; ``*_linear`` at 100 % of the labels, the 10 % figures in the line
before).

    python benchmarks/pretrain_quality.py --method simclr [--epochs 30] [--side 64]
        [--batch 128] [--limit N] [--out runs/pretrain-quality]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sslseg.augment.views import SMALL_SIDE
from sslseg.backbones import FEATURE_DIMS, build_resnet, save_encoder, seeded
from sslseg.data.store import Store, open_store
from sslseg.devices import autocast, full_precision, pick_device, resolve_precision
from sslseg.eval.features import extract_features, resolve_encoder
from sslseg.eval.knn import knn_accuracy
from sslseg.eval.linear import linear_curve
from sslseg.runs import RunDir, atomic_write_text
from sslseg.ssl.registry import REGISTRY
from sslseg.ssl.train import TrainSettings, build_optimizer, warmup_cosine

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10"
PARTS = ("sslseg", "lightly", "random")
#: the arguments that define a budget: a results folder holds one
BUDGET = (
    "method",
    "root",
    "arch",
    "stem",
    "side",
    "batch",
    "epochs",
    "optimizer",
    "lr",
    "momentum",
    "weight_decay",
    "warmup_epochs",
    "seed",
    "precision",
    "limit",
    "test_limit",
)


# ---------------------------------------------------------------- data


def train_root(args: argparse.Namespace, folder: Path) -> Path:
    """The CIFAR-10 root pretraining reads: ``--root``, or with ``--limit`` a folder of links
    to a seeded choice of ``--limit`` of its training images (same layout)."""
    root = Path(args.root)
    if not args.limit:
        return root
    files = sorted((root / "train").glob("*/*.png"))
    if not files:
        raise SystemExit(f"{root}/train: --limit needs CIFAR-10 as class folders of PNG files")
    pick = np.random.default_rng(args.seed).permutation(len(files))[: args.limit]
    sub = folder / f"data-n{args.limit}-s{args.seed}"
    for i in sorted(pick):
        link = sub / "train" / files[i].parent.name / files[i].name
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(files[i].resolve())
    return sub


def test_store(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    """The held-out CIFAR-10 test images at ``--side`` (optionally a seeded ``--test-limit``)."""
    store = open_store("cifar10", args.root, side=args.side, progress=False, split="test")
    rows = np.arange(len(store))
    if args.test_limit:
        rows = np.sort(np.random.default_rng(args.seed).permutation(len(store))[: args.test_limit])
    return np.asarray(store.images[rows]), np.asarray(store.labels[rows])


# ---------------------------------------------------------------- (a) sslseg


def run_sslseg(args: argparse.Namespace, root: Path, folder: Path) -> tuple[Path, list[float]]:
    from sslseg.ssl.command import PretrainConfig, pretrain_encoder

    run_dir = folder / "sslseg-run"
    cfg = PretrainConfig(
        method=args.method,
        method_options=json.loads(args.method_options),
        source="cifar10",
        root=str(root),
        source_options={"split": "train"},
        side=args.side,
        arch=args.arch,
        stem=args.stem,
        epochs=args.epochs,
        batch_size=args.batch,
        optimizer=args.optimizer,
        lr=args.lr,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        warmup_epochs=args.warmup_epochs,
        seed=args.seed,
        out=str(run_dir),
        device=args.device,
        precision=args.precision,
        channels_last=True,
        progress=args.progress,
    )
    encoder = pretrain_encoder(cfg)
    return encoder, [float(r["seconds"]) for r in RunDir(run_dir).read_log()]


# ---------------------------------------------------------------- (b) lightly


def lightly_transform(method: str, side: int) -> Any:
    """lightly's transform for ``method``: its CIFAR-10 benchmark recipe at <= 96 px."""
    from lightly.transforms import (
        BYOLTransform,
        BYOLView1Transform,
        BYOLView2Transform,
        MoCoV2Transform,
        SimCLRTransform,
        SimSiamTransform,
        SwaVTransform,
    )

    small = side <= SMALL_SIDE
    blur = {"gaussian_blur": 0.0} if small else {}
    if method == "simclr":
        return SimCLRTransform(input_size=side, **({"cj_strength": 0.5} if small else {}), **blur)
    if method == "moco":
        return MoCoV2Transform(input_size=side, **({"min_scale": 0.08} if small else {}), **blur)
    if method in ("byol", "barlow_twins"):
        return BYOLTransform(
            view_1_transform=BYOLView1Transform(input_size=side, **blur),
            view_2_transform=BYOLView2Transform(input_size=side, **blur),
        )
    if method == "simsiam":
        return SimSiamTransform(input_size=side, **blur)
    if method == "swav":
        return SwaVTransform(
            crop_sizes=[side],
            crop_counts=[2],
            crop_min_scales=[0.14],
            crop_max_scales=[1.0],
            **({"cj_strength": 0.5} if small else {}),
            **blur,
        )
    raise SystemExit(f"no lightly recipe for method '{method}'")


class LightlyModel(nn.Module):
    """Backbone + lightly's heads and loss for one method, as its CIFAR-10 benchmark has them.

    ``forward(views)`` runs the networks (under autocast); ``loss(outputs)`` the criterion (in
    fp32); ``before_step()`` the momentum update the benchmark makes at the start of a step.
    """

    def __init__(self, method: str, backbone: nn.Module, dim: int) -> None:
        from lightly.loss import (
            BarlowTwinsLoss,
            NegativeCosineSimilarity,
            NTXentLoss,
            SwaVLoss,
        )
        from lightly.models.modules import heads
        from lightly.models.utils import deactivate_requires_grad

        super().__init__()
        self.method = method
        self.backbone = backbone
        if method == "simclr":
            self.projection_head = heads.SimCLRProjectionHead(dim, 512, 128)
            self.criterion: nn.Module = NTXentLoss()
        elif method == "moco":
            self.projection_head = heads.MoCoProjectionHead(dim, 512, 128)
            self.criterion = NTXentLoss(temperature=0.1, memory_bank_size=(4096, 128))
        elif method == "byol":
            self.projection_head = heads.BYOLProjectionHead(dim, 1024, 256)
            self.prediction_head = heads.BYOLPredictionHead(256, 1024, 256)
            self.criterion = NegativeCosineSimilarity()
        elif method == "simsiam":
            self.projection_head = heads.ProjectionHead(
                [
                    (dim, 2048, nn.BatchNorm1d(2048), nn.ReLU(inplace=True)),
                    (2048, 2048, nn.BatchNorm1d(2048), None),
                ]
            )
            self.prediction_head = heads.SimSiamPredictionHead(2048, 512, 2048)
            self.criterion = NegativeCosineSimilarity()
        elif method == "swav":
            self.projection_head = heads.SwaVProjectionHead(dim, 512, 128)
            self.prototypes = heads.SwaVPrototypes(128, 512)
            self.criterion = SwaVLoss()
        elif method == "barlow_twins":
            self.projection_head = heads.ProjectionHead(
                [
                    (dim, 2048, nn.BatchNorm1d(2048), nn.ReLU(inplace=True)),
                    (2048, 2048, None, None),
                ]
            )
            self.criterion = BarlowTwinsLoss()
        else:
            raise SystemExit(f"no lightly recipe for method '{method}'")
        if method in ("moco", "byol"):
            self.backbone_momentum = copy.deepcopy(self.backbone)
            self.projection_head_momentum = copy.deepcopy(self.projection_head)
            deactivate_requires_grad(self.backbone_momentum)
            deactivate_requires_grad(self.projection_head_momentum)

    @torch.no_grad()
    def before_step(self) -> None:
        from lightly.models.utils import update_momentum

        if self.method == "swav":
            self.prototypes.normalize()
        if self.method in ("moco", "byol"):
            update_momentum(self.backbone, self.backbone_momentum, m=0.99)
            update_momentum(self.projection_head, self.projection_head_momentum, m=0.99)

    def _embed(self, x: Tensor) -> Tensor:
        return self.projection_head(self.backbone(x).flatten(start_dim=1))

    def _embed_momentum(self, x: Tensor) -> Tensor:
        return self.projection_head_momentum(self.backbone_momentum(x).flatten(start_dim=1))

    def forward(self, views: list[Tensor]) -> list[Tensor]:
        from lightly.models.utils import batch_shuffle, batch_unshuffle

        if self.method == "moco":
            # the benchmark's symmetric loss with batch shuffling of the keys

            def step(xq: Tensor, xk: Tensor) -> tuple[Tensor, Tensor]:
                xk, shuffle = batch_shuffle(xk)
                return self._embed(xq), batch_unshuffle(self._embed_momentum(xk), shuffle)

            x0, x1 = views
            return [*step(x0, x1), *step(x1, x0)]
        if self.method == "byol":
            x0, x1 = views
            p0 = self.prediction_head(self._embed(x0))
            p1 = self.prediction_head(self._embed(x1))
            z0, z1 = self._embed_momentum(x0).detach(), self._embed_momentum(x1).detach()
            return [p0, p1, z0, z1]
        if self.method == "simsiam":
            z0, z1 = self._embed(views[0]), self._embed(views[1])
            return [z0.detach(), z1.detach(), self.prediction_head(z0), self.prediction_head(z1)]
        if self.method == "swav":
            return [F.normalize(self._embed(x), dim=1, p=2) for x in views]
        return [self._embed(x) for x in views]

    def loss(self, out: list[Tensor]) -> Tensor:
        out = [t.float() for t in out]
        if self.method == "moco":
            return 0.5 * (self.criterion(out[0], out[1]) + self.criterion(out[2], out[3]))
        if self.method == "byol":
            p0, p1, z0, z1 = out
            return 0.5 * (self.criterion(p0, z1) + self.criterion(p1, z0))
        if self.method == "simsiam":
            z0, z1, p0, p1 = out
            return 0.5 * (self.criterion(z0, p1) + self.criterion(z1, p0))
        if self.method == "swav":
            scores = [self.prototypes(z) for z in out]
            return self.criterion(scores[:2], scores[2:])
        return self.criterion(out[0], out[1])


class PilImages(torch.utils.data.Dataset):
    """The store's decoded images as PIL images through lightly's transform."""

    def __init__(self, images: np.ndarray, transform: Any) -> None:
        self.images, self.transform = images, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> Any:
        from PIL import Image

        return self.transform(Image.fromarray(np.asarray(self.images[i])))


class SslsegOnLightlyViews(nn.Module):
    """sslseg's method module behind :class:`LightlyModel`'s interface (``--lightly-model
    sslseg``): its ``training_step`` makes the loss (in fp32 itself), its ``after_step`` the
    momentum schedule."""

    def __init__(self, method: nn.Module) -> None:
        super().__init__()
        self.method = method
        self.backbone = method.backbone

    def before_step(self) -> None:
        pass

    def forward(self, views: list[Tensor]) -> list[Tensor]:
        return [self.method.training_step(views)]

    def loss(self, out: list[Tensor]) -> Tensor:
        return out[0].float()

    def after_step(self, progress: float) -> None:
        self.method.after_step(progress)


def lightly_side_model(args: argparse.Namespace) -> nn.Module:
    """Part (b)'s model on sslseg's initial backbone (the same weights on both sides)."""
    with seeded(args.seed):
        backbone = build_resnet(args.arch, args.stem)
        if args.lightly_model == "lightly":
            return LightlyModel(args.method, backbone, FEATURE_DIMS[args.arch])
        options = json.loads(args.method_options)
        return SslsegOnLightlyViews(
            REGISTRY[args.method](backbone, FEATURE_DIMS[args.arch], **options)
        )


def lightly_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: list[Tensor],
    device: torch.device,
    precision: str,
) -> Tensor:
    """One optimiser step of part (b) on a batch of views; returns the loss.

    Shared with ``pretrain_throughput.py`` so the speed figure times the very step trained here.
    """
    cl = torch.channels_last
    views = [v.to(device, non_blocking=True).contiguous(memory_format=cl) for v in batch]
    model.before_step()
    with autocast(device, precision):
        out = model(views)
    with full_precision(out[0]):
        loss = model.loss(out)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss


def run_lightly(args: argparse.Namespace, store: Store, folder: Path) -> tuple[Path, list[float]]:
    run = RunDir(folder / "lightly-run").create()
    device = pick_device(args.device)
    precision = resolve_precision(device, args.precision)
    model = lightly_side_model(args)
    model.to(device).to(memory_format=torch.channels_last)
    settings = TrainSettings(
        optimizer=args.optimizer,
        lr=args.lr,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
    )
    optimizer = build_optimizer(model, settings)
    steps_per_epoch = len(store) // args.batch
    total = steps_per_epoch * args.epochs
    warmup = min(total, round(args.warmup_epochs * steps_per_epoch))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(warmup, total))
    start, seconds = 0, []
    ckpt = run.load("checkpoint.pt")
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        start, seconds = int(ckpt["epoch"]), list(ckpt["epoch_seconds"])
    generator = torch.Generator()
    loader = torch.utils.data.DataLoader(
        PilImages(np.asarray(store.images), lightly_transform(args.method, args.side)),
        batch_size=args.batch,
        shuffle=True,
        drop_last=True,
        num_workers=args.workers,
        persistent_workers=args.workers > 0,
        pin_memory=device.type == "cuda",
        generator=generator,
    )
    model.train()
    for epoch in range(start, args.epochs):
        generator.manual_seed(args.seed * 100_003 + epoch)
        loss_sum, tic = 0.0, time.perf_counter()
        for batch in loader:  # a list of views, each B x 3 x side x side
            loss = lightly_step(model, optimizer, batch, device, precision)
            scheduler.step()
            if hasattr(model, "after_step"):
                model.after_step(scheduler.last_epoch / total)
            loss_sum += float(loss.detach())
        seconds.append(time.perf_counter() - tic)
        print(
            f"lightly {args.method} epoch {epoch + 1}/{args.epochs} "
            f"loss {loss_sum / steps_per_epoch:.4f} ({sum(seconds):.0f} s)",
            flush=True,
        )
        run.save(
            "checkpoint.pt",
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "epoch": epoch + 1,
                "epoch_seconds": seconds,
            },
        )
    meta = {"arch": args.arch, "stem": args.stem, "method": f"lightly-{args.method}"}
    path = save_encoder(model.backbone, run.path("encoder.pt"), {**meta, "epochs": args.epochs})
    return path, seconds


# ---------------------------------------------------------------- the one evaluator


def evaluate(
    spec: str,
    args: argparse.Namespace,
    bank: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
) -> dict[str, float]:
    """kNN (k = 200) and linear probe (10 % / 100 % labels) of encoder ``spec`` (an
    ``encoder.pt`` or ``random``) on frozen features of the bank and the test images."""
    device = pick_device(args.device)
    encoder = resolve_encoder(spec, args.arch, args.stem, args.seed, args.side)
    train_x = extract_features(encoder.model, bank[0], device=device)
    test_x = extract_features(encoder.model, test[0], device=device)
    knn = knn_accuracy(train_x, bank[1], test_x, test[1], k=200, temperature=0.1, device=device)
    rows = linear_curve(train_x, bank[1], test_x, test[1], fractions=(0.1, 1.0), seed=args.seed)
    by_fraction = {row["fraction"]: float(row["accuracy"]) for row in rows}
    return {"knn": knn, "linear_10": by_fraction[0.1], "linear_100": by_fraction[1.0]}


# ---------------------------------------------------------------- main


def budget(args: argparse.Namespace) -> dict[str, Any]:
    keys = {k: getattr(args, k) for k in BUDGET}
    if args.method_options != "{}":  # folders made before the option existed stay valid
        keys["method_options"] = json.loads(args.method_options)
    if args.lightly_model != "lightly":  # likewise: the committed folders' settings.json
        keys["lightly_model"] = args.lightly_model
    return keys


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--method", required=True, choices=sorted(REGISTRY))
    p.add_argument("--root", default=str(DATA), help="CIFAR-10 (class folders or batches)")
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--stem", default="imagenet", choices=("imagenet", "cifar"))
    p.add_argument("--side", type=int, default=64, help="view and store side (px)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--optimizer", default="sgd", choices=("sgd", "adam", "lars"))
    p.add_argument("--lr", type=float, default=0.06)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--warmup-epochs", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", default="bf16", choices=("bf16", "fp32", "auto"))
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--limit", type=int, default=0, help="train on this many images (0: all)")
    p.add_argument("--test-limit", type=int, default=0, help="score on this many (0: all)")
    p.add_argument("--out", default="runs/pretrain-quality", help="results folder")
    p.add_argument("--parts", default=",".join(PARTS), help="which of sslseg,lightly,random")
    p.add_argument(
        "--lightly-model",
        default="lightly",
        choices=("lightly", "sslseg"),
        help="part (b)'s heads and loss: lightly's (default) or sslseg's method on lightly's views",
    )
    p.add_argument("--progress", action="store_true", help="sslseg's progress bar")
    p.add_argument(
        "--method-options",
        default="{}",
        help="sslseg's method options as JSON (a diagnosis), e.g. '{\"hidden_dim\": 1024}'",
    )
    args = p.parse_args()
    args.root = str(Path(args.root).resolve())
    parts = [x for x in args.parts.split(",") if x]
    if set(parts) - set(PARTS):
        raise SystemExit(f"--parts: choose from {', '.join(PARTS)}")

    folder = Path(args.out) / args.method
    folder.mkdir(parents=True, exist_ok=True)
    settings = folder / "settings.json"
    if settings.is_file() and json.loads(settings.read_text()) != budget(args):
        raise SystemExit(f"{folder}: holds another budget ({settings}); choose another --out")
    atomic_write_text(settings, json.dumps(budget(args), indent=1))

    root = train_root(args, folder)
    store = open_store("cifar10", root, side=args.side, progress=False, split="train")
    bank = (np.asarray(store.images), np.asarray(store.labels))
    test = test_store(args)
    print(
        f"method={args.method} side={args.side} batch={args.batch} epochs={args.epochs} "
        f"train={len(store)} test={len(test[1])} stem={args.stem} precision={args.precision} "
        f"threads={torch.get_num_threads()} workers={args.workers}",
        flush=True,
    )

    results: dict[str, dict[str, float]] = {}
    for part in PARTS:
        done = folder / f"{part}.json"
        if done.is_file():
            results[part] = json.loads(done.read_text())
            continue
        if part not in parts:
            continue
        seconds: list[float] = []
        if part == "sslseg":
            spec, seconds = run_sslseg(args, root, folder)
        elif part == "lightly":
            spec, seconds = run_lightly(args, store, folder)
        else:
            spec = "random"
        row = {
            **evaluate(str(spec), args, bank, test),
            "seconds": sum(seconds),
            # robust to a moment of contention on a shared machine: epochs x median epoch
            "median_epoch_s": float(np.median(seconds)) if seconds else 0.0,
        }
        atomic_write_text(done, json.dumps(row, indent=1))
        results[part] = row
        print(f"{part}: {json.dumps(row)}", flush=True)

    missing = [part for part in PARTS if part not in results]
    if missing:
        print(f"not yet run: {', '.join(missing)}")
        return
    s, li, r = results["sslseg"], results["lightly"], results["random"]
    print(
        f"linear_10: sslseg={s['linear_10']:.4f} lightly={li['linear_10']:.4f} "
        f"random={r['linear_10']:.4f}"
    )
    print(
        f"method={args.method} epochs={args.epochs} sslseg_knn={s['knn']:.4f} "
        f"lightly_knn={li['knn']:.4f} random_knn={r['knn']:.4f} "
        f"sslseg_linear={s['linear_100']:.4f} lightly_linear={li['linear_100']:.4f} "
        f"sslseg_s={s['seconds']:.1f} lightly_s={li['seconds']:.1f}"
    )
    print(
        f"median_epoch_s: sslseg={s['median_epoch_s']:.2f} lightly={li['median_epoch_s']:.2f} "
        f"ratio={li['median_epoch_s'] / max(s['median_epoch_s'], 1e-9):.3f}"
    )


if __name__ == "__main__":
    main()
