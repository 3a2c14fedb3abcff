"""``sslseg pseudo-label [CONFIG.yaml] [key=value ...]``: U-Net segmentation from SaliencyCut
pseudo-masks, against real labels, in three regimes over seeds.

For each seed the data are split once (the fine-tuning split rule, ``data.splits.store_split``)
and written as two seg-folders (``sslseg.saliency.pseudo``): ``pseudo/`` (train and validation
images with their cached SaliencyCut masks, filtered by the confidence rule; the test images
with their real masks) and ``real/`` (the same images, all with real masks). Then:

* ``pseudo-only`` (a): the U-Net trained on ``pseudo/``: zero real labels, model selection on
  pseudo-masks too; tested on the real test masks;
* ``pseudo+real`` (b): (a)'s best U-Net fine-tuned on each fraction of ``real/``'s train
  images: by default all of it (``carry=unet``: ``FinetuneConfig.init``, its best.pt; the
  optimiser starts afresh), or with ``carry=encoder`` only its encoder, exported, under a
  decoder that starts afresh (the start the committed Pet numbers were measured with);
* ``random`` (c), and ``ssl`` when ``encoder=`` names an SSL encoder file: the same fractions
  from that start.

Every fraction is a nested share of one seeded order, so (b) and (c) see the same images at a
fraction and seed, and every regime of a seed is tested on the same test images: comparisons
are paired over seeds (``experiments.stats.paired_iou_difference``). Each (regime, fraction,
seed) fine-tunes in its own folder, which ``finetune`` resumes and a rerun skips when finished
(a cell whose config, start encoder or init checkpoint changed is run again, as in the
experiment grid: a rerun pseudo-only U-Net reruns its pseudo+real cells).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from sslseg.backbones import ARCHS
from sslseg.config import (
    add_config_arguments,
    config_from_args,
    config_to_dict,
    require,
    require_choice,
)
from sslseg.data.splits import Split, refuse_seen_test_images, store_split
from sslseg.data.store import Store
from sslseg.errors import SslsegError
from sslseg.experiments.grid import run_cell
from sslseg.runs import RunDir
from sslseg.saliency.pseudo import (
    SEG_FOLDER_OPTIONS,
    ConfidenceRule,
    Part,
    PseudoLabels,
    pseudo_labels,
    pseudo_parts,
    write_seg_folder,
)
from sslseg.seg.finetune import FinetuneConfig, finetune, open_finetune_store

ZERO = "pseudo-only"
PRETRAINED = "pseudo+real"
RANDOM = "random"
SSL = "ssl"
#: bump when what a data folder holds changes for the same settings
DATA_VERSION = 1
#: what pseudo+real takes from the pseudo-only U-Net: all of it, or its encoder only
CARRIES = ("unet", "encoder")


def default_finetune() -> FinetuneConfig:
    return FinetuneConfig(source="sample", side=64, epochs=10, figures=4)


@dataclass
class PseudoLabelConfig:
    """Every key of ``sslseg pseudo-label``."""

    out: str = "runs/pseudo-labels"  # the study's folder
    # the data (source, root, source_options, border, side, resize, split keys) and training
    # keys of every run; each run sets its own source, root, train_fraction, encoder, seed, out
    finetune: FinetuneConfig = field(default_factory=default_finetune)
    limit: int = 0  # use a seeded choice of this many images of the source (0: all)
    # another image source whose SaliencyCut masks train the pseudo-only U-Net (e.g.
    # cats-vs-dogs for Pet); empty: the train and validation images of finetune's source
    pseudo_source: str = ""
    pseudo_root: str = ""
    pseudo_options: dict[str, Any] = field(default_factory=dict)  # its source options
    pseudo_limit: int = 0  # a seeded choice of this many of its images (0: all)
    fractions: list[float] = field(default_factory=lambda: [0.1, 0.5, 1.0])  # of real labels
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    encoder: str = ""  # an SSL encoder.pt: adds regime ssl beside random
    carry: str = "unet"  # pseudo+real starts from the pseudo-only U-Net: unet (whole) | encoder
    pseudo_epochs: int = 0  # epochs of the pseudo-mask training (0: finetune.epochs)
    confidence: ConfidenceRule = field(default_factory=ConfidenceRule)
    workers: int = 0  # saliency cache processes (0: every core, at most 8)
    saliency_cache: str = ""  # folder of saliency caches (default $SSLSEG_CACHE/saliency)
    max_cells: int = 0  # run at most this many unfinished cells now (0: all); rerun continues
    figures: int = 4  # test images in the example-predictions figure
    n_boot: int = 2000  # bootstrap resamples of one-seed intervals
    progress: bool = True  # the cache's bar and one bar over the runs (each runs quietly)

    def __post_init__(self) -> None:
        require(len(self.seeds) > 0, "seeds", "at least one seed is needed")
        require(len(set(self.seeds)) == len(self.seeds), "seeds", f"{self.seeds} repeat")
        require(len(self.fractions) > 0, "fractions", "at least one fraction is needed")
        for f in self.fractions:
            require(0 < f <= 1, "fractions", f"{f} is outside (0, 1]")
        require(self.limit >= 0, "limit", f"{self.limit} must be >= 0")
        require(self.pseudo_limit >= 0, "pseudo_limit", f"{self.pseudo_limit} must be >= 0")
        require(
            bool(self.pseudo_source) or not (self.pseudo_root or self.pseudo_options),
            "pseudo_source",
            "pseudo_root / pseudo_options are set but pseudo_source is not",
        )
        require(self.pseudo_epochs >= 0, "pseudo_epochs", f"{self.pseudo_epochs} must be >= 0")
        require(self.workers >= 0, "workers", f"{self.workers} must be >= 0")
        require(self.max_cells >= 0, "max_cells", f"{self.max_cells} must be >= 0")
        require(self.figures >= 0, "figures", f"{self.figures} must be >= 0")
        require_choice(self.carry, CARRIES, "carry")
        require(
            self.carry != "encoder" or self.finetune.arch in ARCHS,
            "finetune.arch",
            f"'{self.finetune.arch}': carry=encoder exports the pseudo-trained U-Net's encoder, "
            f"which is done for the torchvision ResNets only ({', '.join(ARCHS)}); "
            "carry=unet takes any arch",
        )
        require(
            not self.finetune.init,
            "finetune.init",
            "each run sets its own start (pseudo+real: the pseudo-only U-Net, see carry)",
        )
        require(
            self.finetune.border != "ignore",
            "finetune.border",
            "ignore is not supported (pseudo and real masks are written as binary PNGs)",
        )


@dataclass(frozen=True)
class Cell:
    regime: str
    fraction: float  # share of the real train labels; 0 for pseudo-only
    seed: int

    @property
    def name(self) -> str:
        if self.regime == ZERO:
            return f"{ZERO}-seed{self.seed}"
        return f"{self.regime}-train{self.fraction:g}-seed{self.seed}"


def regimes(config: PseudoLabelConfig) -> list[str]:
    """The regimes with label fractions, random init first (every comparison's baseline)."""
    return [RANDOM, PRETRAINED, *([SSL] if config.encoder else [])]


def expand(config: PseudoLabelConfig) -> list[Cell]:
    """Seed-major, pseudo-only first in a seed (the pseudo+real cells start from it)."""
    cells = []
    for seed in config.seeds:
        cells.append(Cell(ZERO, 0.0, seed))
        cells += [Cell(r, f, seed) for r in regimes(config) for f in config.fractions]
    return cells


# ---------------------------------------------------------------------------- data


@dataclass
class SeedData:
    """One seed's split of the chosen images and its two written folders."""

    split: Split  # rows of the chosen store
    pseudo: Path
    real: Path


def open_base_store(config: PseudoLabelConfig) -> Store:
    """The segmentation store of ``config.finetune``'s source (its real masks)."""
    return open_finetune_store(config.finetune, config.progress)


def chosen_rows(store: Store, limit: int) -> np.ndarray:
    """All rows, or a seeded choice of ``limit`` of them (sorted; by sorted id, so the folder
    listing's order does not matter)."""
    if limit == 0 or limit >= len(store):
        return np.arange(len(store))
    order = np.argsort(np.array(store.ids, dtype=object), kind="stable")
    return np.sort(order[np.random.default_rng([limit, 7]).permutation(len(order))[:limit]])


def open_pseudo_store(config: PseudoLabelConfig) -> Store | None:
    """The store of ``pseudo_source`` (images only; a seeded choice with ``pseudo_limit``), or
    None when the pseudo-masks come from the data's own images."""
    if not config.pseudo_source:
        return None
    source = dataclasses.replace(
        config.finetune,
        source=config.pseudo_source,
        root=config.pseudo_root,
        source_options=config.pseudo_options,
    )
    store = open_finetune_store(source, config.progress, masks=False)
    return store.subset(chosen_rows(store, config.pseudo_limit))


def other_source_rows(n: int, val_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """A seeded train / validation split of another source's ``n`` images (none is tested)."""
    order = np.random.default_rng([seed, 11]).permutation(n)
    n_val = min(max(1, round(val_fraction * n)), n - 1)
    return {"train": np.sort(order[n_val:]), "val": np.sort(order[:n_val])}


def data_key(config: PseudoLabelConfig, store: Store, labels: PseudoLabels, seed: int) -> str:
    """What a seed's folders hold depends on: names the folder, so a change makes a new one.
    ``labels`` are the pseudo-masks the folder is written with (another source's with
    ``pseudo_source``)."""
    ft = config.finetune
    what = {
        "version": DATA_VERSION,
        "store": store.root.name,
        "limit": config.limit,
        "saliency": labels.cache_folder.name,
        "confidence": config_to_dict(config.confidence),
        "split": [ft.dev_fraction, ft.test_fraction, ft.val_fraction, sorted(ft.test_splits)],
        "seed": seed,
    }
    if labels.store is not store:  # added only then, so the folders of older runs are found
        what["pseudo"] = {"store": labels.store.root.name, "limit": config.pseudo_limit}
    return hashlib.blake2b(json.dumps(what, sort_keys=True).encode(), digest_size=6).hexdigest()


def seed_split(config: PseudoLabelConfig, store: Store, seed: int) -> Split:
    ft = config.finetune
    return store_split(
        store.ids,
        store.splits,
        store.groups,
        ft.dev_fraction,
        seed,
        ft.test_fraction,
        ft.val_fraction,
        tuple(ft.test_splits),
    )


def prepare_seed(
    config: PseudoLabelConfig, store: Store, labels: PseudoLabels, seed: int
) -> SeedData:
    """Write (or reuse) a seed's ``pseudo/`` and ``real/`` seg-folders. ``labels`` are the
    pseudo-masks: of ``store`` itself (its train and validation images of the seed), or of
    another source (all its images, split into train and validation by the seed)."""
    split = seed_split(config, store, seed)
    rows = {"train": split.train, "val": split.val}
    own = labels.store is store
    pseudo_rows = (
        rows if own else other_source_rows(len(labels.store), config.finetune.val_fraction, seed)
    )
    pseudo = pseudo_parts(labels, config.confidence, pseudo_rows)
    for name, part in pseudo.items():
        if len(part.rows) == 0:
            raise SslsegError(
                f"config: confidence: it keeps none of the {len(pseudo_rows[name])} {name} "
                f"images of seed {seed}; loosen min_area / max_area / min_contrast"
            )
    test = Part(split.test, np.asarray(store.masks[split.test]), "real")
    real = {k: Part(v, np.asarray(store.masks[v]), "real") for k, v in rows.items()}
    folder = Path(config.out) / "data" / data_key(config, store, labels, seed)
    extra = {"seed": seed, "confidence": config_to_dict(config.confidence)}
    write_seg_folder(folder / "pseudo", store, {**pseudo, "test": test}, extra)
    write_seg_folder(folder / "real", store, {**real, "test": test}, extra)
    return SeedData(split, folder / "pseudo", folder / "real")


# ---------------------------------------------------------------------------- cells


def cell_config(
    config: PseudoLabelConfig, cell: Cell, data: SeedData, encoder: str, init: str = ""
) -> FinetuneConfig:
    """A cell's fine-tuning on its seed's folder (the folder's own split, all its train tiles
    for pseudo-only, a nested fraction of them otherwise), from ``encoder`` or ``init``."""
    ft = config.finetune
    zero = cell.regime == ZERO
    return dataclasses.replace(
        ft,
        source="seg-folder",
        root=str(data.pseudo if zero else data.real),
        source_options=dict(SEG_FOLDER_OPTIONS),
        dev_fraction=1.0,
        train_fraction=1.0 if zero else cell.fraction,
        test_splits=["test"],
        encoder=encoder,
        init=init,
        epochs=(config.pseudo_epochs or ft.epochs) if zero else ft.epochs,
        seed=cell.seed,
        out=str(cell_folder(config, cell)),
        # every run keeps the predictions of the figure's test images
        figures=max(ft.figures, config.figures),
        # the stores of the written folders live in the study's folder, not the user's cache
        cache=ft.cache or str(Path(config.out) / "stores"),
        progress=False,
    )


def cell_folder(config: PseudoLabelConfig, cell: Cell) -> Path:
    return Path(config.out) / "cells" / cell.name


def pseudo_encoder(config: PseudoLabelConfig, seed: int, meta: dict[str, Any]) -> str:
    """The encoder of seed ``seed``'s pseudo-only U-Net (its best checkpoint), exported."""
    import torch

    from sslseg.backbones import build_resnet, save_encoder

    run = RunDir(cell_folder(config, Cell(ZERO, 0.0, seed)))
    best = run.path("best.pt")
    path = Path(config.out) / "encoders" / f"pseudo-seed{seed}.pt"
    # exported again only when the pseudo-only run was (re)made after it, so the file (whose
    # hash the pseudo+real cells record) stays the same across reruns
    if path.is_file() and path.stat().st_mtime_ns >= best.stat().st_mtime_ns:
        return str(path)
    state = torch.load(best, map_location="cpu", weights_only=False)["model"]
    encoder = {k.removeprefix("encoder."): v for k, v in state.items() if k.startswith("encoder.")}
    backbone = build_resnet(config.finetune.arch)
    missing, unexpected = backbone.load_state_dict(encoder, strict=False)
    if missing or unexpected:
        raise SslsegError(f"{best}: not a {config.finetune.arch} U-Net ({missing[:3]})")
    save_encoder(backbone, path, meta)
    return str(path)


def encoder_meta(config: PseudoLabelConfig, seed: int) -> dict[str, Any]:
    """The sidecar of a pseudo-trained encoder: what it saw, so ``finetune`` can refuse it on
    that seed's test images (the seeded hold-out when every image was used; otherwise every
    image counts as seen)."""
    ft = config.finetune
    data = {"source": ft.source, "root": ft.root, "split": f"train+val of seed {seed}"}
    if config.pseudo_source:  # it saw none of the data's own images
        data = {"source": config.pseudo_source, "root": config.pseudo_root, "split": "all"}
    meta: dict[str, Any] = {
        "arch": ft.arch,
        "stem": "imagenet",
        "method": "pseudo-label U-Net (SaliencyCut masks)",
        "data": data,
        "epochs": config.pseudo_epochs or ft.epochs,
        "seed": seed,
    }
    if config.limit == 0 and not config.pseudo_source:
        meta["holdout"] = {"fraction": ft.test_fraction, "seed": seed}
    return meta


# ---------------------------------------------------------------------------- the study


def run_pseudo_labels(config: PseudoLabelConfig) -> dict[str, Any]:
    """Run or resume every (regime, fraction, seed) cell, then write the report.

    Returns ``complete`` (False when ``max_cells`` stopped it early), ``cells_run`` (cells
    trained now), ``cells`` (finished of all), and when complete the paths of ``report``,
    ``csv``, ``paired_csv``, the figures and the headline IoUs.
    """
    tic = time.perf_counter()
    full = open_base_store(config)
    rows = chosen_rows(full, config.limit)
    store = full.subset(rows)
    if config.encoder and not config.finetune.transductive:
        for seed in config.seeds:  # before anything is written
            refuse_seen_test_images(
                config.encoder,
                config.finetune.source,
                config.finetune.root,
                full.ids,
                full.splits,
                rows[seed_split(config, store, seed).test],
            )
    other = open_pseudo_store(config)

    def masks_of(images: Store) -> PseudoLabels:
        return pseudo_labels(
            images, config.workers or None, config.progress, config.saliency_cache or None
        )

    labels = masks_of(store)  # the report scores the cut itself on the data's own images
    train_labels = labels if other is None else masks_of(other)
    out = RunDir(Path(config.out)).create()
    out.write_config(config)
    seeds = {s: prepare_seed(config, store, train_labels, s) for s in config.seeds}
    fill_seconds = time.perf_counter() - tic
    done, ran = run_cells(config, seeds)
    summary = {"complete": len(done) == len(expand(config)), "cells_run": ran, "cells": len(done)}
    if not summary["complete"]:
        return summary
    from sslseg.experiments.pseudo_report import write_report

    timing = {"fill_and_data_s": round(fill_seconds, 1), "total_s": time.perf_counter() - tic}
    summary.update(write_report(config, store, labels, seeds, done, timing, train_labels))
    return summary


def run_cells(
    config: PseudoLabelConfig, seeds: dict[int, SeedData]
) -> tuple[list[tuple[Cell, dict]], int]:
    """Every cell (or until ``max_cells`` were run now): finished ones are reused."""
    done: list[tuple[Cell, dict]] = []
    ran = 0
    bar = tqdm(expand(config), desc="pseudo-labels", unit="run", disable=not config.progress)
    for cell in bar:
        bar.set_postfix_str(cell.name)
        finished = RunDir(cell_folder(config, cell)).finished
        if config.max_cells and ran >= config.max_cells and not finished:
            break  # stopped here on purpose; a rerun continues with this cell
        cfg = cell_config(config, cell, seeds[cell.seed], *start(config, cell))
        results, now = run_cell(cfg, finetune, config.progress, cell.name)
        ran += now
        done.append((cell, results))
    bar.close()
    return done, ran


def start(config: PseudoLabelConfig, cell: Cell) -> tuple[str, str]:
    """Where a cell starts, as (``encoder``, ``init``) of its ``FinetuneConfig``: random, the
    SSL encoder file, or the seed's pseudo-only U-Net (its best.pt whole, or its encoder)."""
    if cell.regime == SSL:
        return config.encoder, ""
    if cell.regime == PRETRAINED and config.carry == "unet":
        return "random", str(cell_folder(config, Cell(ZERO, 0.0, cell.seed)) / "best.pt")
    if cell.regime == PRETRAINED:
        return pseudo_encoder(config, cell.seed, encoder_meta(config, cell.seed)), ""
    return "random", ""


# ---------------------------------------------------------------------------- command

NOTES = """\
regimes: pseudo-only (U-Net on SaliencyCut pseudo-masks, zero real labels), pseudo+real (that
U-Net fine-tuned on each fraction of the real labels: all of it with carry=unet, its encoder
only with carry=encoder), random (the fractions from random init) and ssl (from encoder=FILE,
when given). Each run sets its own finetune.source (seg-folder), .root, .train_fraction,
.encoder, .init, .seed, .out and .progress (false).
example: sslseg pseudo-label configs/pseudo/pet64.yaml seeds=[0,1,2] confidence.min_area=0.05"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, PseudoLabelConfig, notes=NOTES)


def run(args: argparse.Namespace) -> int:
    summary = run_pseudo_labels(config_from_args(args))
    if not summary["complete"]:
        print(
            f"stopped after {summary['cells_run']} new run(s) (max_cells): {summary['cells']} "
            "finished; run the same command again to continue"
        )
        return 0
    print(Path(summary["report"]).read_text())
    for key in ("report", "csv", "paired_csv", "curve_png", "examples_png"):
        print(f"{key}: {summary[key]}")
    return 0
