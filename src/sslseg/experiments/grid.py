"""The experiment grid of seed 1's Table 4.1: models x dev fractions x seeds.

Each encoder is pretrained once per (model, seed) and reused by every dev fraction; each cell
fine-tunes in its own folder, and a finished cell (its ``results.json`` exists) is skipped, so
a killed grid resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from sslseg.config import require
from sslseg.errors import SslsegError
from sslseg.runs import RunDir
from sslseg.seg.finetune import FinetuneConfig, finetune


@dataclass
class ModelSpec:
    """One row family of the table: a fine-tuning start point."""

    name: str = "baseline"
    label: str = ""  # the table's "Model" column; the name when empty
    pretrain_source: str = ""  # empty: no pretraining, the encoder below is used
    pretrain_root: str = ""
    encoder: str = "random"


def default_models() -> list[ModelSpec]:
    return [
        ModelSpec("baseline", "baseline"),
        ModelSpec("simclr-cifar10", "CIFAR", "cifar10", "../shared/data/cifar10"),
        ModelSpec("simclr-cats-vs-dogs", "Pet", "cats-vs-dogs", "../shared/data/cats-vs-dogs"),
    ]


@dataclass
class ExperimentConfig:
    """A grid: every model at every dev fraction and seed."""

    out: str = "runs/table41"
    models: list[ModelSpec] = field(default_factory=default_models)
    dev_fractions: list[float] = field(default_factory=lambda: [0.8, 0.5, 0.2])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    pretrain: dict[str, Any] = field(default_factory=dict)  # key=value for `sslseg pretrain`
    figure_fraction: float = 0.8
    n_boot: int = 2000

    def __post_init__(self) -> None:
        require(len(self.models) > 0, "models", "at least one model is needed")
        names = [m.name for m in self.models]
        require(len(set(names)) == len(names), "models", f"model names repeat: {names}")
        require(len(self.seeds) > 0, "seeds", "at least one seed is needed")
        require(len(self.dev_fractions) > 0, "dev_fractions", "at least one fraction is needed")
        for f in self.dev_fractions:
            require(
                0 < f <= 1 - self.finetune.test_fraction + 1e-9,
                "dev_fractions",
                f"{f} is outside (0, {1 - self.finetune.test_fraction:g}]",
            )


@dataclass(frozen=True)
class Cell:
    model: ModelSpec
    dev_fraction: float
    seed: int

    @property
    def name(self) -> str:
        return f"{self.model.name}-dev{self.dev_fraction:g}-seed{self.seed}"


def expand(config: ExperimentConfig) -> list[Cell]:
    """All cells, seed-major so that a stopped grid has whole tables for its first seeds."""
    return [
        Cell(model, fraction, seed)
        for seed in config.seeds
        for model in config.models
        for fraction in config.dev_fractions
    ]


def pretrain_folder(config: ExperimentConfig, model: ModelSpec, seed: int) -> Path:
    return Path(config.out) / "pretrain" / f"{model.name}-seed{seed}"


def cell_folder(config: ExperimentConfig, cell: Cell) -> Path:
    return Path(config.out) / "cells" / cell.name


def ensure_encoder(config: ExperimentConfig, model: ModelSpec, seed: int, progress: bool) -> str:
    """The encoder a model's cells start from, pretraining it first if it is missing."""
    if not model.pretrain_source:
        return model.encoder
    folder = pretrain_folder(config, model, seed)
    encoder = folder / "encoder.pt"
    if not encoder.is_file():
        import argparse

        from sslseg.ssl import command as pretrain_command

        overrides = [f"{k}={v}" for k, v in config.pretrain.items()]
        overrides += [
            f"source={model.pretrain_source}",
            f"seed={seed}",
            f"out={folder}",
            f"progress={progress}",
        ]
        if model.pretrain_root:
            overrides.append(f"root={model.pretrain_root}")
        pretrain_command.run(
            argparse.Namespace(config=None, overrides=overrides, export_only=False)
        )
    if not encoder.is_file():
        raise SslsegError(f"{folder}: pretraining finished without writing encoder.pt")
    return str(encoder)


def cell_config(config: ExperimentConfig, cell: Cell, encoder: str) -> FinetuneConfig:
    return dataclasses.replace(
        config.finetune,
        dev_fraction=cell.dev_fraction,
        seed=cell.seed,
        encoder=encoder,
        out=str(cell_folder(config, cell)),
    )


def run_grid(config: ExperimentConfig, progress: bool = True) -> list[tuple[Cell, dict]]:
    """Run (or skip, when finished) every cell; returns each cell with its results."""
    cells = expand(config)
    done = []
    bar = tqdm(cells, desc="experiment", unit="cell", disable=not progress)
    for cell in bar:
        bar.set_postfix_str(cell.name)
        run = RunDir(cell_folder(config, cell))
        if run.finished:
            done.append((cell, run.read_json("results.json")))
            continue
        encoder = ensure_encoder(config, cell.model, cell.seed, progress)
        done.append((cell, finetune(cell_config(config, cell, encoder), progress=False)))
    return done
