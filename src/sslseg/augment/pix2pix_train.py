"""Training the Pix2Pix proxy (``sslseg pix2pix``) and measuring how close it comes.

The pairs are a store's images and their cached SaliencyCut region images (each region
painted with its own mean colour, :meth:`sslseg.saliency.cache.Entry.region_image`; a 200p
map is painted at 2S and area-averaged to S as the saliency view does). The generator learns
from the images pretraining may see (the same hold-out as ``sslseg pretrain``: a layout's
train split, else all but the seeded test share) and is scored on the held-out ones:

* ``l1``: mean absolute difference to the true region image, per pixel and channel, in
  [0, 1] units;
* ``boundary_f``: F-measure of region boundaries (:func:`boundaries`: a colour step above
  ``EDGE_STEP`` to the right or below) with a tolerance of one pixel (:func:`boundary_f`);
* ``region_spread``: the output's standard deviation inside the true regions
  (:func:`region_spread`; 0 for the region image itself). L1 and boundary F alone rate the
  input image itself close to its region image (it has the regions' mean colours and their
  edges); what SaliencyCut removes is the texture inside them, which this measures.

The run folder holds ``config.yaml``, ``log.jsonl`` (one line per epoch), ``last.pt`` (resume;
deleted once finished), ``generator.pt`` + ``generator.json`` (the export), ``results.json``,
``pix2pix_curves.png`` (L1 and boundary F per epoch) and ``pix2pix_examples.png`` (held-out
image / SaliencyCut region image / Pix2Pix output, like the study's Fig. 6).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from tqdm import tqdm

from sslseg.augment.pix2pix import (
    GENERATOR_FILE,
    PatchDiscriminator,
    UNetGenerator,
    check_side,
    default_layers,
    gan_loss,
    init_weights,
    save_generator,
    to_signed,
    to_unit,
)
from sslseg.augment.views import flip_batch, to_float
from sslseg.config import PRECISIONS, require, require_choice
from sslseg.devices import autocast, pick_device, resolve_precision
from sslseg.errors import SslsegError
from sslseg.loop import epoch_batches, run_epochs
from sslseg.runs import RunDir

if TYPE_CHECKING:
    from collections.abc import Callable

    from sslseg.data.store import Store

#: a colour step (max over channels, [0, 1] units) above this between neighbours is a boundary
EDGE_STEP = 0.05
CHECKPOINT = "last.pt"


@dataclass
class Pix2PixConfig:
    """Every key of ``sslseg pix2pix`` (YAML file and/or ``key=value`` overrides)."""

    source: str = "oxford-pet"  # data source, as in sslseg pretrain
    root: str = ""  # the source's data folder
    source_options: dict[str, Any] = field(default_factory=dict)  # passed to the source
    side: int = 64  # store side: a power of two
    resize: str = "squash"  # squash | center-crop
    scale: int = 1  # region images of the 100p (1) or 200p (2) saliency cache
    cache_root: str = ""  # saliency cache folder; "" = the default
    epochs: int = 100  # constant lr for the first half, then linear decay to 0 (the paper)
    batch_size: int = 16
    lr: float = 2e-4  # Adam, both networks
    beta1: float = 0.5
    l1_weight: float = 100.0  # lambda of the L1 term
    ngf: int = 64  # generator width of the outermost level
    ndf: int = 64  # discriminator width of the first layer
    d_layers: int = 0  # PatchGAN stride-2 blocks; 0 = 3 from 256 px, else 2
    dropout: bool = True  # dropout 0.5 in the generator's middle up blocks (training only)
    flip: bool = True  # random horizontal flip of each pair
    seed: int = 0  # initial weights, batch order, flips, dropout, hold-out
    transductive: bool = False  # true: also learn from the held-out test images
    holdout_fraction: float = 0.2  # share held out (sources without their own split)
    holdout_seed: int = -1  # -1 = the run's seed
    examples: int = 6  # held-out images in pix2pix_examples.png
    workers: int = 0  # processes filling the saliency cache; 0 = every core, at most 8
    out: str = ""  # run folder; "" = runs/pix2pix-<source>-<side>px
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto (bf16 where native) | fp32 | bf16
    progress: bool = True  # progress bars

    def __post_init__(self) -> None:
        check_side(self.side)
        require(self.scale in (1, 2), "scale", f"must be 1 or 2, got {self.scale}")
        require(self.epochs >= 1, "epochs", f"must be at least 1, got {self.epochs}")
        require(self.batch_size >= 2, "batch_size", f"must be at least 2, got {self.batch_size}")
        require(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        require(0 <= self.beta1 < 1, "beta1", f"must be in [0, 1), got {self.beta1}")
        require(self.l1_weight >= 0, "l1_weight", f"must be >= 0, got {self.l1_weight}")
        require(self.ngf >= 1, "ngf", f"must be at least 1, got {self.ngf}")
        require(self.ndf >= 1, "ndf", f"must be at least 1, got {self.ndf}")
        require(self.d_layers >= 0, "d_layers", f"must be >= 0, got {self.d_layers}")
        require(self.examples >= 0, "examples", f"must be >= 0, got {self.examples}")
        require(self.workers >= 0, "workers", f"must be >= 0, got {self.workers}")
        require(
            0 < self.holdout_fraction < 1,
            "holdout_fraction",
            f"must be in (0, 1), got {self.holdout_fraction}",
        )
        require_choice(self.precision, PRECISIONS, "precision")

    def holdout(self) -> dict[str, Any] | None:
        """The hold-out the generator learns without (None: transductive)."""
        from sslseg.data.splits import holdout_of

        return holdout_of(self)

    def run_folder(self) -> Path:
        return Path(self.out or f"runs/pix2pix-{self.source}-{self.side}px")


# --- the pairs ------------------------------------------------------------------------------


def region_images(store: Store, config: Pix2PixConfig) -> np.ndarray:
    """``N x S x S x 3`` uint8 SaliencyCut region image of every store image (cache filled
    for misses first)."""
    from sslseg.augment.saliency_view import SaliencyLookup, paint_regions
    from sslseg.saliency.cache import fill_store

    cache, rows = fill_store(
        store,
        config.scale,
        config.workers or None,
        config.progress,
        root=config.cache_root or None,
    )
    lookup = SaliencyLookup(cache, rows)
    out = np.empty((len(rows), store.side, store.side, 3), np.uint8)
    for start in range(0, len(rows), 256):
        idx = torch.arange(start, min(start + 256, len(rows)))
        painted = paint_regions(lookup, idx, torch.device("cpu"), store.side)
        out[start : start + len(idx)] = to_uint8(painted).permute(0, 2, 3, 1).numpy()
    return out


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] float images to uint8 (rounded)."""
    return x.clamp(0, 1).mul(255).round().to(torch.uint8)


def hwc_to_float(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """``B x S x S x 3`` uint8 (store layout) to ``B x 3 x S x S`` float in [0, 1] on ``device``."""
    return to_float(torch.as_tensor(np.asarray(images)).to(device).permute(0, 3, 1, 2))


def train_rows(config: Pix2PixConfig, store: Store) -> tuple[np.ndarray, np.ndarray]:
    """(rows the generator learns from, held-out rows it is scored on)."""
    from sslseg.data.splits import pretraining_rows

    every = np.arange(len(store.ids))
    rows = pretraining_rows(config.source, store.ids, config.holdout(), store.splits)
    if rows is None:  # transductive, or a source with a standard split: its own test split
        rows = every
        held = np.flatnonzero(np.isin(np.asarray(store.splits or [""] * len(every)), ["test"]))
    else:
        held = np.setdiff1d(every, rows)
    if len(rows) < 2:
        raise SslsegError(f"pix2pix: {config.source}: {len(rows)} training images, need >= 2")
    return np.asarray(rows), held


# --- fidelity -------------------------------------------------------------------------------


def boundaries(images: np.ndarray, step: float = EDGE_STEP) -> np.ndarray:
    """``... x H x W`` bool: pixels whose colour differs by more than ``step`` (max over the
    last axis of ``... x H x W x 3`` float images in [0, 1]) from the right or lower one."""
    dx = np.abs(np.diff(images, axis=-2)).max(-1) > step
    dy = np.abs(np.diff(images, axis=-3)).max(-1) > step
    edge = np.zeros(images.shape[:-1], dtype=bool)
    edge[..., :, :-1] |= dx
    edge[..., :-1, :] |= dy
    return edge


def boundary_f(pred: np.ndarray, true: np.ndarray, tolerance: int = 1) -> float:
    """F-measure of boundary maps (``H x W`` bool, or stacked): a predicted boundary pixel
    is right if a true one lies within ``tolerance`` pixels (chessboard), and vice versa.
    Two empty maps agree (1.0); one empty map against a non-empty one scores 0."""
    pred, true = np.asarray(pred, bool), np.asarray(true, bool)
    size = 2 * tolerance + 1
    structure = np.ones((1,) * (pred.ndim - 2) + (size, size), dtype=bool)
    near_true = ndimage.binary_dilation(true, structure)
    near_pred = ndimage.binary_dilation(pred, structure)
    n_pred, n_true = pred.sum(), true.sum()
    if n_pred == 0 and n_true == 0:
        return 1.0
    if n_pred == 0 or n_true == 0:
        return 0.0
    precision = (pred & near_true).sum() / n_pred
    recall = (true & near_pred).sum() / n_true
    return 0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall))


@torch.no_grad()
def generate(
    generator: UNetGenerator,
    images: np.ndarray,
    device: torch.device,
    precision: str = "fp32",
    batch_size: int = 64,
) -> np.ndarray:
    """The generator's region images of uint8 ``N x S x S x 3`` images, as float
    ``N x S x S x 3`` in [0, 1] (eval mode; the caller's mode is restored)."""
    was_training = generator.training
    generator.eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = to_signed(hwc_to_float(images[start : start + batch_size], device))
        with autocast(device, precision):
            y = generator(x).float()
        out.append(to_unit(y).clamp_(0, 1).permute(0, 2, 3, 1).cpu().numpy())
    generator.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, *images.shape[1:]), np.float32)


def region_spread(pred: np.ndarray, true_uint8: np.ndarray) -> float:
    """How far ``pred`` is from flat inside the true regions: the pixel-weighted standard
    deviation (over pixels and channels, [0, 1] units) of ``pred`` within each region of the
    true region image (pixels of one painted colour), averaged over images. The true region
    image scores 0; an image keeps its texture and scores its within-region spread."""
    spreads = []
    for p, t in zip(pred, np.asarray(true_uint8), strict=True):
        _, region = np.unique(t.reshape(-1, 3), axis=0, return_inverse=True)
        region = region.ravel()
        flat = p.reshape(-1, 3).astype(np.float64)
        count = np.bincount(region).astype(np.float64)
        total = 0.0
        for c in range(3):
            mean = np.bincount(region, flat[:, c]) / count
            total += ((flat[:, c] - mean[region]) ** 2).sum()
        spreads.append(np.sqrt(total / flat.size))
    return float(np.mean(spreads)) if spreads else float("nan")


def fidelity(pred: np.ndarray, true_uint8: np.ndarray) -> dict[str, float]:
    """``l1``, ``boundary_f`` and ``region_spread`` of float predictions against uint8 true
    region images."""
    true = np.asarray(true_uint8, np.float32) / 255
    return {
        "l1": float(np.abs(pred - true).mean()),
        "boundary_f": boundary_f(boundaries(pred), boundaries(true)),
        "region_spread": region_spread(pred, true_uint8),
    }


# --- training -------------------------------------------------------------------------------


def lr_factor(epoch: int, epochs: int) -> float:
    """The paper's schedule (its code's ``lambda_rule``): constant for the first half of the
    epochs, then linearly down to ``1 / (decay + 1)`` at the last (0-based ``epoch``)."""
    keep = epochs // 2
    return 1.0 - max(0, epoch + 1 - keep) / (epochs - keep + 1)


class Pix2PixEpochs:
    """The state of one Pix2Pix run and its ``train_one_epoch`` (see ``sslseg.loop``)."""

    desc = "pix2pix"

    def __init__(
        self,
        config: Pix2PixConfig,
        images: np.ndarray,
        targets: np.ndarray,
        held: tuple[np.ndarray, np.ndarray],
        device: torch.device,
        precision: str,
    ) -> None:
        self.config, self.device, self.precision = config, device, precision
        self.images, self.targets, self.held = images, targets, held
        from sslseg.backbones import seeded

        # built and initialised on the CPU under the seed alone (the caller's stream untouched,
        # the same weights on any device), then moved
        with seeded(config.seed):
            generator = UNetGenerator(config.side, config.ngf, config.dropout)
            discriminator = PatchDiscriminator(
                config.ndf, config.d_layers or default_layers(config.side)
            )
            init_weights(generator)
            init_weights(discriminator)
        self.generator, self.discriminator = generator.to(device), discriminator.to(device)
        betas = (config.beta1, 0.999)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), config.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), config.lr, betas=betas)
        self.steps_per_epoch = len(self.batches(0))

    def batches(self, epoch: int) -> list[np.ndarray]:
        return epoch_batches(
            np.arange(len(self.images)), self.config.batch_size, self.config.seed, epoch
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One discriminator and one generator update on ``x`` -> ``y`` ([-1, 1]); returns
        the detached (d_loss, g_gan, g_l1)."""
        with autocast(self.device, self.precision):
            fake = self.generator(x)
            d_real = self.discriminator(x, y)
            d_fake = self.discriminator(x, fake.detach())
            d_loss = 0.5 * (gan_loss(d_real.float(), True) + gan_loss(d_fake.float(), False))
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        with autocast(self.device, self.precision):
            g_gan = gan_loss(self.discriminator(x, fake).float(), True)
            g_l1 = F.l1_loss(fake.float(), y)
            g_loss = g_gan + self.config.l1_weight * g_l1
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        return torch.stack([d_loss, g_gan, g_l1]).detach()

    def train_one_epoch(self, epoch: int, bar: tqdm) -> dict[str, Any]:
        config, device = self.config, self.device
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = config.lr * lr_factor(epoch, config.epochs)
        self.generator.train()
        self.discriminator.train()
        flips = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
        cuda = [device] if device.type == "cuda" else []
        tic, sums, n = time.perf_counter(), torch.zeros(3, device=device), 0
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(config.seed * 100_003 + epoch)  # dropout: resumable
            for idx in self.batches(epoch):
                x = to_signed(hwc_to_float(self.images[idx], device))
                y = to_signed(hwc_to_float(self.targets[idx], device))
                if config.flip:
                    x, y = flip_batch(x, y, flips)
                sums += self.step(x, y) * len(idx)
                n += len(idx)
                bar.update()
        d_loss, g_gan, g_l1 = (sums / n).tolist()  # one host sync per epoch
        seconds = time.perf_counter() - tic
        if not np.isfinite([d_loss, g_gan, g_l1]).all():
            raise SslsegError(f"training: loss became non-finite at epoch {epoch + 1}; lower lr")
        images, targets = self.held
        record = {
            "epoch": epoch + 1,
            "d_loss": round(d_loss, 5),
            "g_gan": round(g_gan, 5),
            "g_l1": round(g_l1 / 2, 5),  # in [0, 1] units like the held-out l1
            "seconds": round(seconds, 3),
            "img_s": round(n / seconds, 2),
            "compute_precision": self.precision,
        }
        if len(images):
            pred = generate(self.generator, images, device, self.precision)
            record.update({f"held_{k}": round(v, 5) for k, v in fidelity(pred, targets).items()})
        bar.set_postfix(l1=f"{record['g_l1']:.3f}", held=record.get("held_l1", "-"))
        return record


def train_pix2pix(
    config: Pix2PixConfig,
    after_epoch: Callable[[int, dict[str, Any]], None] | None = None,
) -> Path:
    """Train (or resume, or find finished) the Pix2Pix run of ``config``; returns its
    ``generator.pt``. ``after_epoch`` is the loop's hook (tests simulate kills there)."""
    from sslseg.data.store import open_store

    run = RunDir(config.run_folder())
    run.check_same_config(config)
    if run.finished and run.path(GENERATOR_FILE).is_file():
        print(f"{run.root}: already finished; generator at {run.path(GENERATOR_FILE)}")
        return run.path(GENERATOR_FILE)
    device = pick_device(config.device)
    precision = resolve_precision(device, config.precision)
    store = open_store(
        config.source,
        config.root or None,
        side=config.side,
        resize=config.resize,
        progress=config.progress,
        **config.source_options,
    )
    rows, held = train_rows(config, store)
    targets = region_images(store, config)  # before the run folder: a bad cache writes nothing
    run.create()
    run.write_config(config)
    images = np.asarray(store.images)
    trainer = Pix2PixEpochs(
        config,
        images[rows],
        targets[rows],
        (images[held], targets[held]),
        device,
        precision,
    )
    run_epochs(
        trainer,
        run,
        config.epochs,
        checkpoint=CHECKPOINT,
        progress=config.progress,
        after_epoch=after_epoch,
    )
    pred = generate(trainer.generator, images[held], device, precision)
    scores = fidelity(pred, targets[held]) if len(held) else {}
    meta = {
        "source": config.source,
        "root": config.root,
        "side": config.side,
        "resize": config.resize,
        "scale": config.scale,
        "epochs": config.epochs,
        "seed": config.seed,
        "holdout": config.holdout(),
        "train_images": len(rows),
    }
    path = save_generator(trainer.generator, run.path(GENERATOR_FILE), meta)
    from sslseg.augment.figures import plot_pix2pix_curves, plot_pix2pix_examples

    plot_pix2pix_curves(run.read_log(), run.path("pix2pix_curves.png"))
    if config.examples and len(held):
        k = min(config.examples, len(held))
        plot_pix2pix_examples(
            images[held[:k]], targets[held[:k]], pred[:k], run.path("pix2pix_examples.png")
        )
    run.finish(
        {"held_out_images": len(held), "train_images": len(rows), **scores, "generator": str(path)},
        CHECKPOINT,
    )
    print(
        f"pix2pix: {config.epochs} epochs on {len(rows)} images; held-out ({len(held)}) "
        + ", ".join(f"{k} {v:.4f}" for k, v in scores.items())
        + f"; generator at {path}"
    )
    return path
