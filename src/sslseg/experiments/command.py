"""``sslseg experiment CONFIG`` (a whole grid) and ``sslseg quickstart`` (its miniature)."""

from __future__ import annotations

import argparse
import time

from sslseg.config import load_config
from sslseg.experiments.grid import ExperimentConfig, ModelSpec
from sslseg.seg.command import add_config_arguments, split_config_args
from sslseg.seg.finetune import FinetuneConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.epilog = (
        "example: sslseg experiment configs/table41-cpu.yaml seeds=[0,1,2]\n"
        "keys: out, models (list of {name, label, pretrain_source, pretrain_root, encoder}), "
        "dev_fractions, seeds, finetune.<key> (as sslseg finetune), pretrain (a mapping of "
        "sslseg pretrain keys), figure_fraction, n_boot"
    )


def run(args: argparse.Namespace) -> int:
    from sslseg.experiments.run import run_experiment

    path, overrides = split_config_args(args.args)
    config = load_config(ExperimentConfig, path, overrides)
    report = run_experiment(config, progress=not args.quiet)
    print(report.read_text())
    print(f"report: {report}")
    return 0


def quickstart_config(out: str = "runs/quickstart") -> ExperimentConfig:
    """The whole pipeline on the embedded sample, sized for a few minutes on 2 CPU cores."""
    return ExperimentConfig(
        out=out,
        models=[
            ModelSpec("baseline", "baseline"),
            ModelSpec("simclr-sample", "SimCLR (sample)", pretrain_source="sample"),
        ],
        dev_fractions=[0.8, 0.2],
        # three seeds: the fewest for which the paired t-interval over seeds is of any use
        seeds=[0, 1, 2],
        finetune=FinetuneConfig(source="sample", side=64, epochs=10, batch_size=16, figures=4),
        pretrain={
            "method": "simclr",
            "side": 64,
            "epochs": 10,
            "batch_size": 64,
            "lr": 0.3,
            "warmup_epochs": 1,
        },
        figure_fraction=0.8,
        n_boot=1000,
    )


def add_quickstart_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/quickstart", help="run folder (runs/quickstart)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run_quickstart(args: argparse.Namespace) -> int:
    from sslseg.experiments.run import run_experiment

    tic = time.perf_counter()
    config = quickstart_config(args.out)
    report = run_experiment(config, progress=not args.quiet)
    print(report.read_text())
    print(f"quickstart finished in {time.perf_counter() - tic:.0f} s")
    print(f"report:  {report}")
    for png in sorted(report.parent.glob("*.png")):
        print(f"figure:  {png}")
    return 0
