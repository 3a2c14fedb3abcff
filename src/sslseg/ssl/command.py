"""``sslseg pretrain [CONFIG.yaml] [key=value ...]``: self-supervised pretraining into a run folder.

Running the same command again on an existing run folder continues from its last checkpoint
(after a kill or Ctrl-C); a finished run is left as it is. Under
``torchrun --nproc_per_node N -m sslseg.cli pretrain ...`` every process trains on its share
of each batch and the loss sees the negatives of all of them.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sslseg.config import (
    PRECISIONS,
    add_config_arguments,
    config_from_args,
    require,
    require_choice,
)
from sslseg.errors import SslsegError

if TYPE_CHECKING:
    from sslseg.data.store import Store
    from sslseg.runs import RunDir


@dataclass
class PretrainConfig:
    """Every key of ``sslseg pretrain`` (YAML file and/or ``key=value`` overrides)."""

    method: str = "simclr"  # a name of the registry (listed below)
    method_options: dict[str, Any] = field(default_factory=dict)  # the method's own options
    source: str = "cats-vs-dogs"  # data source (docs/pretraining.md)
    root: str = ""  # the source's data folder
    source_options: dict[str, Any] = field(default_factory=dict)  # passed to the source
    side: int = 64  # store side in pixels
    resize: str = "squash"  # squash | center-crop
    arch: str = "resnet18"  # resnet18 | resnet50 (torchvision) | a timm model name
    stem: str = "imagenet"  # imagenet | cifar (3x3 conv, no max-pool)
    epochs: int = 20
    batch_size: int = 128
    optimizer: str = "sgd"  # adam | sgd | lars
    lr: float = 0.06
    momentum: float = 0.9
    weight_decay: float = 5e-4
    temperature: float | None = None  # None: the method's own default (SimCLR 0.5)
    warmup_epochs: float = 1.0  # linear warm-up, then cosine decay
    seed: int = 0  # initial weights, views, hold-out
    # Pretraining leaves out the seeded test set that fine-tuning and `sslseg evaluate` score
    # on (data/splits.py: holdout) unless transductive; holdout_seed -1 = the run's seed.
    transductive: bool = False  # true: pretrain on the held-out test images too
    holdout_fraction: float = 0.2  # share of the source held out
    holdout_seed: int = -1  # -1 = the run's seed
    policy: str = "default"  # view policy (docs/policies.md)
    pix2pix: str = ""  # generator.pt of `sslseg pix2pix`, for the pix2pix... policies
    out: str = ""  # run folder; "" = runs/pretrain-<method>-<source>-<side>px
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto (bf16 where native) | fp32 | bf16
    channels_last: bool = True
    compile: bool = False  # torch.compile the method
    progress: bool = True  # progress bars
    tensorboard: bool = False  # TensorBoard event files in <out>/tensorboard

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
        require_choice(self.optimizer, ("adam", "sgd", "lars"), "optimizer")
        require_choice(self.precision, PRECISIONS, "precision")

    def holdout(self) -> dict[str, Any] | None:
        """The hold-out this run pretrains without (None: transductive)."""
        from sslseg.data.splits import holdout_of

        return holdout_of(self)

    def run_folder(self) -> Path:
        return Path(self.out or f"runs/pretrain-{self.method}-{self.source}-{self.side}px")


def _methods_text() -> str:
    from sslseg.ssl.registry import REGISTRY

    lines = ["methods:", *(f"  {k}: {v.paper}" for k, v in REGISTRY.items())]
    lines += [
        "configs/pretrain/<method>.yaml holds each method's settings, e.g.",
        "  sslseg pretrain configs/pretrain/simclr.yaml epochs=2 out=runs/try",
    ]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, PretrainConfig, notes=_methods_text())
    parser.add_argument(
        "--export-only",
        action="store_true",
        help="only write encoder.pt/encoder.json from the run's last checkpoint",
    )


def export_meta(cfg: PretrainConfig) -> dict[str, Any]:
    return {
        "arch": cfg.arch,
        "stem": cfg.stem,
        "method": cfg.method,
        "policy": cfg.policy,
        **({"pix2pix": cfg.pix2pix} if cfg.pix2pix else {}),
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

    rows = pretraining_rows(cfg.source, store.ids, cfg.holdout(), store.splits)
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
    pretrain_encoder(config_from_args(args), export_only=args.export_only)
    return 0


def pretrain_encoder(cfg: PretrainConfig, export_only: bool = False) -> Path:
    """Pretrain (or resume, or find finished) the run of ``cfg``; returns its ``encoder.pt``.

    ``export_only`` writes the encoder from the run's last checkpoint instead of training.
    """
    from sslseg.augment.policies import build_view_maker, check_policy
    from sslseg.devices import pick_device
    from sslseg.runs import RunDir
    from sslseg.ssl.train import close_distributed, init_distributed, pretrain

    method = build(cfg)  # validates method and options before anything is written
    # before the run folder or the store is written
    painter = check_policy(cfg.policy, cfg.pix2pix or None, cfg.side)
    pick_device(cfg.device)  # a missing GPU, too
    run_dir = RunDir(cfg.run_folder())
    if export_only:
        return export_last(cfg, method, run_dir)

    rank, world_size = init_distributed(cfg.device)
    if run_dir.finished and run_dir.path("encoder.pt").is_file():
        run_dir.check_same_config(cfg)
        if rank == 0:
            print(f"{run_dir.root}: already finished; encoder at {run_dir.path('encoder.pt')}")
        return run_dir.path("encoder.pt")
    if rank == 0:
        run_dir.check_same_config(cfg)
        run_dir.create()
        run_dir.write_config(cfg)
    store = training_store(cfg, open_pretraining_store(cfg, rank, world_size))
    views = build_view_maker(
        cfg.policy,
        type(method).view_specs(cfg.side),
        store=store,
        progress=cfg.progress,
        generator=cfg.pix2pix or None,
        painter=painter,
    )
    summary = pretrain(method, store.images, views, train_settings(cfg), run_dir, export_meta(cfg))
    if rank == 0:
        print(
            f"{cfg.method}: {cfg.epochs} epochs, final loss {summary['final_loss']:.4f}; "
            f"encoder at {run_dir.path('encoder.pt')}"
        )
    close_distributed()
    return run_dir.path("encoder.pt")


def export_last(cfg: PretrainConfig, method: Any, run_dir: RunDir) -> Path:
    """Write ``encoder.pt`` / ``encoder.json`` from the run's last checkpoint."""
    from sslseg.ssl.train import CHECKPOINT, export

    ckpt = run_dir.load(CHECKPOINT)
    if ckpt is None:
        raise SslsegError(f"{run_dir.path(CHECKPOINT)}: no checkpoint to export from")
    method.load_state_dict(ckpt["method"])
    path = export(method, run_dir, {**export_meta(cfg), "epochs": int(ckpt["epoch"])})
    print(f"encoder of epoch {ckpt['epoch']} written to {path}")
    return path


def open_pretraining_store(cfg: PretrainConfig, rank: int = 0, world_size: int = 1) -> Store:
    """The store of ``cfg``'s source: process 0 decodes it first, the others then open it."""
    import torch.distributed as dist

    from sslseg.data.store import open_store

    def opened(progress: bool) -> Store:
        return open_store(
            cfg.source,
            cfg.root or None,
            side=cfg.side,
            resize=cfg.resize,
            progress=progress,
            **cfg.source_options,
        )

    store = opened(cfg.progress) if rank == 0 else None
    if world_size > 1:
        dist.barrier()
    return store if store is not None else opened(False)


def train_settings(cfg: PretrainConfig) -> Any:
    """The training loop's settings of ``cfg``: every ``TrainSettings`` field that the config
    also has, by name, so a setting is declared once in ``PretrainConfig`` and never copied
    field by field (the loop's own, e.g. ``check_every``, keep their defaults)."""
    import dataclasses

    from sslseg.ssl.train import TrainSettings

    names = {f.name for f in dataclasses.fields(PretrainConfig)}
    shared = [f.name for f in dataclasses.fields(TrainSettings) if f.name in names]
    return TrainSettings(**{name: getattr(cfg, name) for name in shared})


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m sslseg.ssl.command``): the CLI's ``pretrain``."""
    import sys

    from sslseg.cli import main as cli_main

    return cli_main(["pretrain", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
