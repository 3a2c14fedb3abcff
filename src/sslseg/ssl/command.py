"""``sslseg pretrain [CONFIG] [key=value ...]``: self-supervised pretraining into a run folder.

Running the same command again on an existing run folder continues from its last checkpoint
(after a kill or Ctrl-C); a finished run is left as it is. Under
``torchrun --nproc_per_node N -m sslseg.cli pretrain ...`` every process trains on its share
of each batch and the loss sees the negatives of all of them.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sslseg.config import PRECISIONS, config_to_dict, load_config, require
from sslseg.errors import SslsegError

if TYPE_CHECKING:
    from sslseg.data.store import Store

# keys that may change between a run and its resumption without changing what it computes
RESUMABLE_CHANGES = {"device", "compile", "progress", "out"}


@dataclass
class PretrainConfig:
    """Every key of ``sslseg pretrain`` (YAML file and/or ``key=value`` overrides)."""

    method: str = "simclr"
    method_options: dict[str, Any] = field(default_factory=dict)
    source: str = "cats-vs-dogs"
    root: str = ""
    source_options: dict[str, Any] = field(default_factory=dict)
    side: int = 64
    resize: str = "squash"
    arch: str = "resnet18"
    stem: str = "imagenet"
    epochs: int = 20
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.06
    momentum: float = 0.9
    weight_decay: float = 5e-4
    temperature: float | None = None  # None: the method's own default (SimCLR 0.5)
    warmup_epochs: float = 1.0
    seed: int = 0
    # Pretraining leaves out the seeded test set that fine-tuning and `sslseg evaluate` score
    # on (data/splits.py: holdout) unless transductive; holdout_seed -1 = the run's seed.
    transductive: bool = False
    holdout_fraction: float = 0.2
    holdout_seed: int = -1
    policy: str = "default"
    out: str = ""
    device: str = "auto"
    precision: str = "auto"
    channels_last: bool = True
    compile: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        require(self.epochs >= 1, "epochs", f"must be at least 1, got {self.epochs}")
        require(self.batch_size >= 2, "batch_size", f"must be at least 2, got {self.batch_size}")
        require(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        require(self.weight_decay >= 0, "weight_decay", f"must be >= 0, got {self.weight_decay}")
        require(0 <= self.momentum < 1, "momentum", f"must be in [0, 1), got {self.momentum}")
        require(
            self.temperature is None or self.temperature > 0,
            "temperature",
            f"must be > 0, got {self.temperature}",
        )
        require(
            0 <= self.warmup_epochs <= self.epochs,
            "warmup_epochs",
            f"must be between 0 and epochs ({self.epochs}), got {self.warmup_epochs}",
        )
        require(
            0 < self.holdout_fraction < 1,
            "holdout_fraction",
            f"must be in (0, 1), got {self.holdout_fraction}",
        )
        from sslseg.data.splits import TEST_SPLITS

        require(
            self.transductive
            or str(self.source_options.get("split", "")) not in TEST_SPLITS.get(self.source, ()),
            "source_options.split",
            f"'{self.source_options.get('split')}' holds {self.source}'s test images; pretrain "
            "on its training split, or set transductive=true",
        )
        require(self.side >= 8, "side", f"must be at least 8, got {self.side}")
        require(
            self.optimizer in ("adam", "sgd", "lars"),
            "optimizer",
            f"'{self.optimizer}' is not one of adam, sgd, lars",
        )
        require(
            self.precision in PRECISIONS,
            "precision",
            f"'{self.precision}' is not one of {', '.join(PRECISIONS)}",
        )

    def holdout(self) -> dict[str, Any] | None:
        """The hold-out this run pretrains without (None: transductive)."""
        if self.transductive:
            return None
        seed = self.seed if self.holdout_seed < 0 else self.holdout_seed
        return {"fraction": self.holdout_fraction, "seed": seed}

    def run_folder(self) -> Path:
        return Path(self.out or f"runs/pretrain-{self.method}-{self.source}-{self.side}px")


def _defaults_text() -> str:
    lines = ["config keys (defaults):"]
    for f in fields(PretrainConfig):
        default = f.default_factory() if callable(f.default_factory) else f.default  # type: ignore[misc]
        lines.append(f"  {f.name}={default!r}")
    from sslseg.ssl.registry import REGISTRY

    lines.append("methods: " + ", ".join(f"{k} ({v.paper})" for k, v in REGISTRY.items()))
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "config",
        nargs="?",
        default=None,
        help="YAML config (e.g. configs/pretrain_simclr.yaml); key=value arguments override it",
    )
    parser.add_argument("overrides", nargs="*", default=[], help="key=value overrides")
    parser.add_argument(
        "--export-only",
        action="store_true",
        help="only write encoder.pt/encoder.json from the run's last checkpoint",
    )
    parser.epilog = (parser.epilog or "") + _defaults_text()


def _split_args(args: argparse.Namespace) -> tuple[str | None, list[str]]:
    # argparse cannot tell an optional positional CONFIG from a first key=value
    config, overrides = args.config, list(args.overrides)
    if config is not None and "=" in config and not Path(config).is_file():
        overrides.insert(0, config)
        config = None
    return config, overrides


def _check_same_run(run_root: Path, cfg: PretrainConfig) -> None:
    import yaml

    old = yaml.safe_load((run_root / "config.yaml").read_text()) or {}
    new = config_to_dict(cfg)
    # a key the older run did not have yet is taken to hold its default
    changed = [k for k in new if k not in RESUMABLE_CHANGES and k in old and old[k] != new[k]]
    if changed:
        k = changed[0]
        raise SslsegError(
            f"{run_root}: holds a run with a different config ({k}: {old.get(k)!r} there, "
            f"{new[k]!r} now); choose another out= or delete the folder to start over"
        )


def export_meta(cfg: PretrainConfig) -> dict[str, Any]:
    return {
        "arch": cfg.arch,
        "stem": cfg.stem,
        "method": cfg.method,
        "policy": cfg.policy,
        "seed": cfg.seed,
        "side": cfg.side,
        "data": {
            "source": cfg.source,
            "root": cfg.root,
            "side": cfg.side,
            "resize": cfg.resize,
            **cfg.source_options,
        },
        "transductive": cfg.transductive,
        "holdout": cfg.holdout(),
    }


def training_store(cfg: PretrainConfig, store: Store) -> Store:
    """``store`` without the images pretraining must not see (see ``holdout``)."""
    from sslseg.data.splits import pretraining_rows

    rows = pretraining_rows(cfg.source, store.ids, cfg.holdout())
    return store if rows is None else store.subset(rows)


def build(cfg: PretrainConfig) -> Any:
    """The method of ``cfg`` (unknown method or option → one-line error)."""
    from sslseg.ssl.registry import REGISTRY, build_method, method_options

    options = dict(cfg.method_options)
    if cfg.temperature is not None and cfg.method in REGISTRY:
        if "temperature" not in method_options(REGISTRY[cfg.method]):
            raise SslsegError(f"config: temperature: method '{cfg.method}' has no temperature")
        options.setdefault("temperature", cfg.temperature)
    from sslseg.backbones import seeded

    # The seed names the initial weights (backbone, heads, prototypes, queues) on every
    # rank; a private generator state leaves the caller's untouched.
    with seeded(cfg.seed):
        return build_method(cfg.method, cfg.arch, cfg.stem, **options)


def run(args: argparse.Namespace) -> int:
    """``sslseg pretrain``: the config from the command line, then :func:`pretrain_encoder`."""
    config_path, overrides = _split_args(args)
    cfg = load_config(PretrainConfig, config_path, overrides)
    pretrain_encoder(cfg, export_only=args.export_only)
    return 0


def pretrain_encoder(cfg: PretrainConfig, export_only: bool = False) -> Path:
    """Pretrain (or resume, or find finished) the run of ``cfg``; returns its ``encoder.pt``.

    ``export_only`` writes the encoder from the run's last checkpoint instead of training.
    """
    import torch.distributed as dist

    from sslseg.augment.views import build_view_maker, check_policy
    from sslseg.data.store import open_store
    from sslseg.runs import RunDir
    from sslseg.ssl.train import CHECKPOINT, TrainSettings, export, init_distributed, pretrain

    method = build(cfg)  # validates method and options before anything is written
    check_policy(cfg.policy)  # before the run folder or the store is written
    run_dir = RunDir(cfg.run_folder())

    if export_only:
        ckpt = run_dir.load(CHECKPOINT)
        if ckpt is None:
            raise SslsegError(f"{run_dir.path(CHECKPOINT)}: no checkpoint to export from")
        method.load_state_dict(ckpt["method"])
        path = export(method, run_dir, {**export_meta(cfg), "epochs": int(ckpt["epoch"])})
        print(f"encoder of epoch {ckpt['epoch']} written to {path}")
        return path

    rank, world_size = init_distributed(cfg.device)
    if run_dir.finished and run_dir.path("encoder.pt").is_file():
        _check_same_run(run_dir.root, cfg)
        if rank == 0:
            print(f"{run_dir.root}: already finished; encoder at {run_dir.path('encoder.pt')}")
        return run_dir.path("encoder.pt")
    if rank == 0:
        if run_dir.path("config.yaml").is_file():
            _check_same_run(run_dir.root, cfg)
        run_dir.create()
        run_dir.write_config(cfg)
        # process 0 decodes the store first; the others then open the finished one
        store = open_store(
            cfg.source,
            cfg.root or None,
            side=cfg.side,
            resize=cfg.resize,
            progress=cfg.progress,
            **cfg.source_options,
        )
    if world_size > 1:
        dist.barrier()
    if rank != 0:
        store = open_store(
            cfg.source,
            cfg.root or None,
            side=cfg.side,
            resize=cfg.resize,
            progress=False,
            **cfg.source_options,
        )

    store = training_store(cfg, store)
    views = build_view_maker(
        cfg.policy, type(method).view_specs(cfg.side), store=store, progress=cfg.progress
    )
    settings = TrainSettings(
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        optimizer=cfg.optimizer,
        lr=cfg.lr,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
        warmup_epochs=cfg.warmup_epochs,
        seed=cfg.seed,
        device=cfg.device,
        precision=cfg.precision,
        channels_last=cfg.channels_last,
        compile=cfg.compile,
        progress=cfg.progress,
    )
    summary = pretrain(method, store.images, views, settings, run_dir, export_meta(cfg))
    if rank == 0:
        print(
            f"{cfg.method}: {cfg.epochs} epochs, final loss {summary['final_loss']:.4f}; "
            f"encoder at {run_dir.path('encoder.pt')}"
        )
    if world_size > 1:
        dist.destroy_process_group()
    return run_dir.path("encoder.pt")


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m sslseg.ssl.command``): the CLI's ``pretrain``."""
    import sys

    from sslseg.cli import main as cli_main

    return cli_main(["pretrain", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
