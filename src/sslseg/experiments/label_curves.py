"""Segmentation label-fraction curves (seed 2, Fig. 10): test IoU and AP against the share of
training images, one line per encoder, on one fixed split and test set.

Each (encoder, fraction, seed) fine-tunes in its own folder; finished ones are skipped. Every
other encoder is compared with the first at each fraction by the paired IoU difference over the
same seeds (paired t over seeds, or an image bootstrap conditional on a single run, as in
the experiment report; see docs/statistics.md).
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from sslseg.config import add_config_arguments, config_from_args, require  # noqa: E402
from sslseg.experiments.report import error_bars, read_per_image  # noqa: E402
from sslseg.experiments.stats import UNIT, mean_interval, paired_iou_difference  # noqa: E402
from sslseg.runs import RunDir, atomic_write_text  # noqa: E402
from sslseg.seg.finetune import FinetuneConfig, finetune  # noqa: E402


@dataclass
class LabelCurveConfig:
    """Every key of ``sslseg label-curves``."""

    out: str = "runs/label-curves"  # the curves' folder
    encoders: list[str] = field(default_factory=lambda: ["random"])  # the first is the baseline
    fractions: list[float] = field(  # shares of the training images
        default_factory=lambda: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    )
    seeds: list[int] = field(default_factory=lambda: [0])
    # every run's fine-tuning (encoder, train_fraction, seed and out are set per run)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    progress: bool = True  # one bar over the runs (each fine-tunes quietly)

    def __post_init__(self) -> None:
        require(len(self.encoders) > 0, "encoders", "at least one encoder is needed")
        for f in self.fractions:
            require(0 < f <= 1, "fractions", f"{f} is outside (0, 1]")


def encoder_label(encoder: str) -> str:
    path = Path(encoder)
    return path.parent.name if path.suffix == ".pt" else encoder


def run_label_curves(config: LabelCurveConfig) -> Path:
    """Fine-tune every (encoder, fraction, seed); write ``label_curves.csv`` and the PNG."""
    out = RunDir(Path(config.out)).create()
    out.write_config(config)
    cells = [(e, f, s) for s in config.seeds for e in config.encoders for f in config.fractions]
    rows = []
    for encoder, fraction, seed in tqdm(cells, desc="label fractions", disable=not config.progress):
        name = f"{encoder_label(encoder)}-train{fraction:g}-seed{seed}"
        cfg = dataclasses.replace(
            config.finetune,
            encoder=encoder,
            train_fraction=fraction,
            seed=seed,
            out=str(out.root / "cells" / name),
            progress=False,
        )
        result = finetune(cfg)
        rows.append((encoder_label(encoder), fraction, seed, result, Path(cfg.out)))
    lines = ["encoder,train_fraction,seed,train_images,iou,average_precision"]
    lines += [
        f"{e},{f:g},{s},{r['train_images']},{r['iou']:.6g},{r['average_precision']:.6g}"
        for e, f, s, r, _ in rows
    ]
    atomic_write_text(out.path("label_curves.csv"), "\n".join(lines) + "\n")
    atomic_write_text(out.path("label_curves_paired.csv"), paired_differences_csv(rows))
    plot_label_curves(rows, out.path("label_curves.png"))
    return out.path("label_curves.csv")


def paired_differences_csv(rows: list, n_boot: int = 2000) -> str:
    """IoU(encoder) - IoU(first encoder) at each fraction, paired over the shared seeds.

    As in the experiment report (``stats.paired_iou_difference``): with >= 2 seeds a paired t
    interval over seeds (``basis`` seeds-t, with ``p_value`` and ``mde``, the smallest |ΔIoU|
    detectable with 80% power at 95%); with one seed a paired bootstrap over test images,
    conditional on that one training run (``images-bootstrap-1-run``). ``family_*`` holds the
    interval at the Bonferroni level 1 - 0.05/m over the file's m comparisons.
    """
    first = rows[0][0]
    folder = {(e, f, s): run for e, f, s, _, run in rows}
    result = {(e, f, s): r for e, f, s, r, _ in rows}
    compared = []
    for encoder in dict.fromkeys(r[0] for r in rows if r[0] != first):
        for fraction in sorted({r[1] for r in rows if r[0] == encoder}):
            seeds = sorted(s for e, f, s in folder if e == encoder and f == fraction)
            seeds = [s for s in seeds if (first, fraction, s) in folder]
            if not seeds:
                continue
            keys = [((encoder, fraction, s), (first, fraction, s)) for s in seeds]
            values = (
                [_seed_value(result[m], folder[m], len(seeds)) for m, _ in keys],
                [_seed_value(result[b], folder[b], len(seeds)) for _, b in keys],
            )
            compared.append((encoder, fraction, len(seeds), values))
    family = 1 - 0.05 / max(len(compared), 1)
    lines = [
        "encoder,baseline,train_fraction,seeds,delta_iou,low,high,"
        "basis,p_value,mde,family_level,family_low,family_high"
    ]
    for encoder, fraction, n_seeds, values in compared:
        diff = paired_iou_difference(*values, n_boot=n_boot)
        strict = paired_iou_difference(*values, n_boot=n_boot, level=family)
        lines.append(
            f"{encoder},{first},{fraction:g},{n_seeds},"
            f"{diff.mean:.4f},{diff.low:.4f},{diff.high:.4f},"
            f"{diff.basis},{diff.p_value:.4g},{diff.mde:.4f},"
            f"{family:.4g},{strict.low:.4f},{strict.high:.4f}"
        )
    return "\n".join(lines) + "\n"


def _seed_value(result: dict, run: Path, n_seeds: int) -> dict[str, np.ndarray] | float:
    """The run's IoU with >= 2 seeds when known, else its per-image counts (when readable)."""
    if n_seeds >= 2 and "iou" in result:
        return float(result["iou"])
    try:
        return read_per_image(run)
    except OSError:
        if "iou" in result:
            return float(result["iou"])
        raise


def plot_label_curves(rows: list, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, name in ((axes[0], "iou", "test IoU"), (axes[1], "average_precision", "test AP")):
        for encoder in dict.fromkeys(r[0] for r in rows):
            fractions = sorted({r[1] for r in rows if r[0] == encoder})
            # both metrics lie in [0, 1]; t-intervals over 2-3 seeds reach beyond, so clip
            stats = [
                mean_interval(
                    [r[3][key] for r in rows if r[0] == encoder and r[1] == f], bounds=UNIT
                )
                for f in fractions
            ]
            ax.errorbar(
                fractions,
                [s.mean for s in stats],
                yerr=error_bars(stats),
                marker="o",
                capsize=3,
                label=encoder,
            )
        ax.set_xlabel("fraction of training images")
        ax.set_ylabel(f"{name} (mean, 95% t-interval over seeds)")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(
        parser,
        LabelCurveConfig,
        notes="each run sets its own finetune.encoder, .train_fraction, .seed, .out and "
        ".progress (false)\n"
        "example: sslseg label-curves encoders=[random,runs/simclr/encoder.pt] "
        "finetune.source=oxford-pet\n    finetune.root=../shared/data/oxford-iiit-pet",
    )


def run(args: argparse.Namespace) -> int:
    csv_path = run_label_curves(config_from_args(args))
    print(csv_path.read_text())
    print(csv_path.with_name("label_curves_paired.csv").read_text())
    print(f"curves: {csv_path.with_suffix('.png')}")
    return 0
