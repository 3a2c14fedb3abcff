"""``sslseg experiment [CONFIG.yaml] [key=value ...]`` (a whole grid) and ``sslseg quickstart``
(its miniature, the same keys with other defaults); thin layers over
:func:`sslseg.experiments.run.run_experiment`."""

from __future__ import annotations

import argparse
import time

from sslseg.config import Alias, add_config_arguments, config_from_args
from sslseg.experiments.grid import ExperimentConfig, ModelSpec
from sslseg.seg.finetune import FinetuneConfig

NOTES = """\
models: a list of {name, label, pretrain_source, pretrain_root, encoder}; a model with a
pretrain_source is pretrained once per seed with the keys of `pretrain` (any key of sslseg
pretrain), the others fine-tune from their encoder. Each cell sets its own
finetune.dev_fraction, .seed, .encoder, .out and .progress (false).
example: sslseg experiment configs/table41-cpu.yaml seeds=[0,1,2]"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, ExperimentConfig, notes=NOTES)


def run(args: argparse.Namespace) -> int:
    from sslseg.experiments.run import run_experiment

    report = run_experiment(config_from_args(args))
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


QUICKSTART_NOTES = """\
the keys of sslseg experiment, with the quickstart's values as defaults.
example: sslseg quickstart seeds=[0] out=runs/quick1"""


def add_quickstart_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(
        parser, quickstart_config(), [Alias("--out", "out", "run folder")], QUICKSTART_NOTES
    )


def run_quickstart(args: argparse.Namespace) -> int:
    from sslseg.experiments.run import run_experiment

    tic = time.perf_counter()
    report = run_experiment(config_from_args(args))
    print(report.read_text())
    print(f"quickstart finished in {time.perf_counter() - tic:.0f} s")
    print(f"report:  {report}")
    for png in sorted(report.parent.glob("*.png")):
        print(f"figure:  {png}")
    return 0
