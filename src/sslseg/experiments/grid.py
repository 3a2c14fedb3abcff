"""The experiment grid of seed 1's Table 4.1: models x dev fractions x seeds.

Each encoder is pretrained once per (model, seed) and reused by every dev fraction; each cell
fine-tunes in its own folder, and a finished cell is skipped, so a killed grid resumes where it
stopped. Nothing stale is reused: each cell records the resolved fine-tuning config and the
hash of the encoder file (or ``init`` checkpoint) it started from (``made_by.json``), each
pretraining folder keeps its resolved config; a rerun whose config differs (other than in keys
that change no result) recomputes exactly those cells and encoders, and says which key changed.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tqdm import tqdm

from sslseg.config import (
    RESUMABLE_KEYS,
    changed_key,
    changed_since,
    config_to_dict,
    load_config,
    require,
)
from sslseg.errors import SslsegError
from sslseg.runs import RunDir
from sslseg.seg.finetune import FinetuneConfig, finetune
from sslseg.seg.warm_start import init_checkpoint

if TYPE_CHECKING:
    from sslseg.ssl.command import PretrainConfig

#: keys that change where or how visibly a result is made, never the result itself
NO_RESULT_KEYS = RESUMABLE_KEYS | {"figures"}  # figures: how many predictions are drawn
#: fine-tuning keys added after cells were first fingerprinted, with the value that does what
#: a cell fingerprinted without them did
ADDED_KEYS = {"source_options": {}, "init": ""}
MADE_BY = "made_by.json"
CELL = "cell.json"  # run_cell's record of a cell's (last) training wall time


@dataclass
class ModelSpec:
    """One row family of the table: a fine-tuning start point."""

    name: str = "baseline"  # folder names and the report's rows
    label: str = ""  # the table's "Model" column; the name when empty
    pretrain_source: str = ""  # empty: no pretraining, the encoder below is used
    pretrain_root: str = ""  # the pretraining source's data folder
    encoder: str = "random"  # without pretraining: random | imagenet | PATH of an encoder.pt
    # this model's own keys of `sslseg pretrain`, over the study's shared ones (e.g. policy)
    pretrain: dict[str, Any] = field(default_factory=dict)


def default_models() -> list[ModelSpec]:
    return [
        ModelSpec("baseline", "baseline"),
        ModelSpec("simclr-cifar10", "CIFAR", "cifar10", "../shared/data/cifar10"),
        ModelSpec("simclr-cats-vs-dogs", "Pet", "cats-vs-dogs", "../shared/data/cats-vs-dogs"),
    ]


@dataclass
class ExperimentConfig:
    """A grid: every model at every dev fraction and seed."""

    out: str = "runs/table41"  # the grid's folder
    models: list[ModelSpec] = field(default_factory=default_models)
    dev_fractions: list[float] = field(default_factory=lambda: [0.8, 0.5, 0.2])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    # every cell's fine-tuning (dev_fraction, seed, encoder and out are set per cell)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    pretrain: dict[str, Any] = field(default_factory=dict)  # keys of `sslseg pretrain`
    figure_fraction: float = 0.8  # the dev fraction Figure 4.1 shows
    n_boot: int = 2000  # bootstrap resamples of the one-seed intervals
    progress: bool = True  # the grid's bar and pretraining's (cells fine-tune quietly)

    def __post_init__(self) -> None:
        check_models(self.models, self.seeds)
        require(len(self.dev_fractions) > 0, "dev_fractions", "at least one fraction is needed")
        for f in self.dev_fractions:
            require(
                0 < f <= 1 - self.finetune.test_fraction + 1e-9,
                "dev_fractions",
                f"{f} is outside (0, {1 - self.finetune.test_fraction:g}]",
            )

    def pretrain_holdout(self) -> float:
        """The share pretraining leaves out: the fine-tuning test set."""
        return self.finetune.test_fraction


def check_models(models: list[ModelSpec], seeds: list[int]) -> None:
    require(len(models) > 0, "models", "at least one model is needed")
    names = [m.name for m in models]
    require(len(set(names)) == len(names), "models", f"model names repeat: {names}")
    require(len(seeds) > 0, "seeds", "at least one seed is needed")


class Pretrains(Protocol):
    """A study that pretrains its models' encoders, one per (model, seed), under ``out``."""

    out: str
    pretrain: dict[str, Any]  # keys of `sslseg pretrain` every model shares
    progress: bool

    def pretrain_holdout(self) -> float: ...


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


def pretrain_folder(config: Pretrains, model: ModelSpec, seed: int) -> Path:
    return Path(config.out) / "pretrain" / f"{model.name}-seed{seed}"


def cell_folder(config: ExperimentConfig, cell: Cell) -> Path:
    return Path(config.out) / "cells" / cell.name


def pretrain_config(config: Pretrains, model: ModelSpec, seed: int) -> PretrainConfig:
    """The resolved pretraining config of one (model, seed), validated like the CLI's."""
    from sslseg.ssl.command import PretrainConfig

    values = {
        **config.pretrain,
        **model.pretrain,
        "source": model.pretrain_source,
        "seed": seed,
        "out": str(pretrain_folder(config, model, seed)),
        "progress": config.progress,
        # a model pretrained on the downstream source leaves out that seed's test set
        "holdout_fraction": config.pretrain_holdout(),
    }
    if model.pretrain_root:
        values["root"] = model.pretrain_root
    return load_config(PretrainConfig, values=values)


def check_pretraining(
    config: Pretrains, models: list[ModelSpec], seeds: list[int]
) -> list[PretrainConfig]:
    """Every pretraining config of these models is valid (view policy included), checked
    before a study writes anything; returns them. Devices are not checked here (a GPU config
    is valid on a machine without one): :func:`check_study` checks them too."""
    from sslseg.augment.policies import check_policy

    configs = []
    for model in models:
        for seed in seeds if model.pretrain_source else ():
            cfg = pretrain_config(config, model, seed)
            check_policy(cfg.policy, cfg.pix2pix or None, cfg.side)
            configs.append(cfg)
    return configs


def check_study(
    config: Pretrains, models: list[ModelSpec], seeds: list[int], devices: list[str]
) -> None:
    """What a study checks before it writes anything: every pretraining config of these models
    (:func:`check_pretraining`) and every device it would train on, pretraining's and the
    downstream ``devices``."""
    from sslseg.devices import check_devices

    pretrains = check_pretraining(config, models, seeds)
    check_devices([*(c.device for c in pretrains), *devices])


def ensure_encoder(config: Pretrains, model: ModelSpec, seed: int) -> str:
    """The encoder a model's cells start from, pretraining it first if missing or stale."""
    if not model.pretrain_source:
        return model.encoder
    from sslseg.ssl.command import pretrain_encoder

    cfg = pretrain_config(config, model, seed)
    folder = pretrain_folder(config, model, seed)
    run = RunDir(folder)
    saved = run.read_yaml("config.yaml")
    if saved is not None:
        key, _, _ = changed_since(saved, cfg, RESUMABLE_KEYS)  # added keys at default: same
        if key:
            _say(config.progress, f"{folder}: pretraining again, {key} changed")
            shutil.rmtree(folder)
        elif run.finished and run.path("encoder.pt").is_file():
            return str(run.path("encoder.pt"))  # every dev fraction reuses it as it is
    encoder = pretrain_encoder(cfg)
    if not encoder.is_file():
        raise SslsegError(f"{folder}: pretraining finished without writing encoder.pt")
    return str(encoder)


def _say(progress: bool, message: str) -> None:
    if progress:
        tqdm.write(message)


def made_by(cell_cfg: Any) -> dict:
    """What a cell's results depend on: its resolved config (a fine-tuning or detection config),
    its encoder file's hash and, with ``init``, the hash of the checkpoint it starts from (a
    rerun run behind the same path)."""
    from sslseg.eval.features import file_hash

    encoder = Path(cell_cfg.encoder)
    made = {
        "config": config_to_dict(cell_cfg),
        "encoder_hash": file_hash(encoder) if encoder.is_file() else cell_cfg.encoder,
    }
    if getattr(cell_cfg, "init", ""):
        init = init_checkpoint(cell_cfg.init)
        made["init_hash"] = file_hash(init) if init.is_file() else cell_cfg.init
    return made


def _hashed_paths(made: dict) -> set[str]:
    """The start-file keys whose content hash stands in for their path: the same encoder behind
    another path (the grid run again under another ``out=`` spelling) is the same start."""
    cfg = made["config"]
    keys = {"encoder"} if made["encoder_hash"] != cfg.get("encoder") else set()
    if made.get("init_hash") not in (None, cfg.get("init")):
        keys.add("init")
    return keys


def stale_key(run: RunDir, made: dict) -> str:
    """Why a finished cell cannot be reused ("" when it can): a changed key first, then a
    changed start file behind the same key."""
    old = run.read_json(MADE_BY)
    if old is None:
        return "made_by.json (made before results were fingerprinted)"
    added = {k: v for k, v in ADDED_KEYS.items() if k in made["config"]}  # a detection cell: none
    # a finished cell is reused whatever path its start file is at now; a killed one resumes
    # only under the same paths, because the command it resumes checks them
    moved = _hashed_paths(made) if run.finished else set()
    key = changed_key({**added, **old.get("config", {})}, made["config"], NO_RESULT_KEYS | moved)
    if key:
        return key
    if old.get("encoder_hash") != made["encoder_hash"]:
        return "encoder (its file changed)"
    if old.get("init_hash") != made.get("init_hash"):
        return "init (its checkpoint changed)"
    return ""


def cell_config(config: ExperimentConfig, cell: Cell, encoder: str) -> FinetuneConfig:
    """A cell's fine-tuning: the grid's, at the cell's fraction and seed, without a bar."""
    return dataclasses.replace(
        config.finetune,
        dev_fraction=cell.dev_fraction,
        seed=cell.seed,
        encoder=encoder,
        out=str(cell_folder(config, cell)),
        progress=False,
    )


def run_cell(
    cell_cfg: Any, train: Callable[[Any], dict], progress: bool, name: str
) -> tuple[dict, bool]:
    """One cell's results and whether it was trained now (False: finished before, reused).

    Reused when finished under the same fingerprint; else trained (or resumed, when killed
    under the same fingerprint) by ``train`` in ``cell_cfg.out``, and the wall time of that
    (last) attempt written beside the results as ``cell.json``."""
    run = RunDir(Path(cell_cfg.out))
    made = made_by(cell_cfg)
    key = stale_key(run, made) if run.root.exists() else ""
    if key:
        # a stale run is neither reused nor resumed
        _say(progress, f"{name}: training again, {key} changed")
        shutil.rmtree(run.root)
    if run.finished:
        return run.read_json("results.json"), False
    # recorded before training, so a killed cell resumes under the same fingerprint
    run.create().write_json(MADE_BY, made)
    tic = time.perf_counter()
    try:
        results = train(cell_cfg)
    except BaseException:
        if [p.name for p in run.root.iterdir()] == [MADE_BY]:
            shutil.rmtree(run.root)  # bad input: leave nothing behind
        raise
    run.write_json(CELL, {"wall_s": round(time.perf_counter() - tic, 2)})
    return results, True


def cell_wall_s(folder: str | Path) -> float:
    """The wall time ``run_cell`` recorded for the cell in ``folder`` (NaN when it has none)."""
    cell = RunDir(Path(folder)).read_json(CELL)
    return float(cell["wall_s"]) if cell else float("nan")


def run_grid(config: ExperimentConfig) -> list[tuple[Cell, dict]]:
    """Run (or skip, when finished) every cell; returns each cell with its results."""
    cells = expand(config)
    done = []
    bar = tqdm(cells, desc="experiment", unit="cell", disable=not config.progress)
    for cell in bar:
        bar.set_postfix_str(cell.name)
        encoder = ensure_encoder(config, cell.model, cell.seed)
        cell_cfg = cell_config(config, cell, encoder)
        done.append((cell, run_cell(cell_cfg, finetune, config.progress, cell.name)[0]))
    return done
