"""Segmentation label-fraction curves (seed 2 and seed 003, Fig. 10): a downstream metric
against the share of training images, one line per encoder, on one fixed split and test set.

The lines are ``encoders`` used as they are (random, imagenet, an ``encoder.pt``) and ``models``
pretrained per seed through the experiment grid's pretraining (``<out>/pretrain/<model>-seed<s>``,
reused while its resolved config is unchanged; e.g. SimCLR under the default and a saliency
policy). Each (line, downstream model, fraction, seed) trains in its own cell
``<out>/cells/<line>[-maskrcnn]-train<f>-seed<s>``: the U-Net (``finetune``: IoU and soft-mask AP)
and, with ``downstream`` holding ``maskrcnn``, Mask R-CNN (``detect``: mask AP), which reads its
data keys from ``finetune`` so both models test on one split. Fractions are nested prefixes of
one seeded order of the train images. A finished cell is reused while its config and encoder
file are unchanged (``grid.run_cell``), a killed one resumes.

Every other line is compared with the first at each fraction on each downstream metric by the
paired difference over the same seeds (paired t over seeds; with one seed and the U-Net, an image
bootstrap conditional on that run, as in the experiment report; see docs/statistics.md), at 95 %
and at the Bonferroni level over the file's comparisons.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from sslseg.config import add_config_arguments, config_from_args, require  # noqa: E402
from sslseg.det.train import DetectConfig  # noqa: E402
from sslseg.eval.plots import save_figure  # noqa: E402
from sslseg.experiments import downstream as down  # noqa: E402
from sslseg.experiments.grid import (  # noqa: E402
    ModelSpec,
    cell_wall_s,
    check_models,
    check_study,
    ensure_encoder,
    run_cell,
)
from sslseg.experiments.report import (  # noqa: E402
    error_bars,
    mean_cell,
    paired_table,
    read_per_image,
    write_results_csv,
)
from sslseg.experiments.stats import (  # noqa: E402
    UNIT,
    PairedDifference,
    mean_interval,
    paired_iou_difference,
)
from sslseg.runs import RunDir, atomic_write_text  # noqa: E402
from sslseg.seg.finetune import FinetuneConfig  # noqa: E402


@dataclass
class LabelCurveConfig:
    """Every key of ``sslseg label-curves``."""

    out: str = "runs/label-curves"  # the curves' folder
    # start points used as they are: random | imagenet | PATH of an encoder.pt; the first line
    # (these, then `models`) is the baseline
    encoders: list[str] = field(default_factory=lambda: ["random"])
    # encoders pretrained once per seed (a line each), as the experiment grid's models
    models: list[ModelSpec] = field(default_factory=list)
    # keys of `sslseg pretrain` every model shares (a model's own `pretrain` keys win; source,
    # root and seed are set per model)
    pretrain: dict[str, Any] = field(default_factory=dict)
    fractions: list[float] = field(  # shares of the training images
        default_factory=lambda: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    )
    seeds: list[int] = field(default_factory=lambda: [0])
    downstream: list[str] = field(default_factory=lambda: ["unet"])  # unet | maskrcnn
    # the U-Net cells, and the data of every cell (encoder, train_fraction, seed, out and
    # progress are set per cell)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    # the Mask R-CNN cells (their data keys come from finetune; the same per-cell keys)
    detect: DetectConfig = field(default_factory=DetectConfig)
    progress: bool = True  # one bar over the lines and seeds (each cell trains quietly)

    def __post_init__(self) -> None:
        require(len(self.encoders) + len(self.models) > 0, "encoders", "at least one is needed")
        check_models(lines(self), self.seeds)
        for f in self.fractions:
            require(0 < f <= 1, "fractions", f"{f} is outside (0, 1]")
        down.check_downstream(self.downstream)

    def pretrain_holdout(self) -> float:
        """Pretraining on the downstream source leaves out its test share."""
        return self.finetune.test_fraction


class CurvePoint(NamedTuple):
    """One trained cell: its line, downstream model, fraction, seed, results and folder."""

    line: str
    downstream: str
    fraction: float
    seed: int
    results: dict[str, Any]
    folder: Path


def encoder_label(encoder: str) -> str:
    path = Path(encoder)
    return path.parent.name if path.suffix == ".pt" else encoder


def lines(config: LabelCurveConfig) -> list[ModelSpec]:
    """The curves' lines: each fixed encoder, then each pretrained model."""
    fixed = [ModelSpec(encoder_label(e), encoder=e) for e in config.encoders]
    return [*fixed, *config.models]


def cell_name(line: str, downstream: str, fraction: float, seed: int) -> str:
    model = "" if downstream == "unet" else f"-{downstream}"  # U-Net cells keep their old names
    return f"{line}{model}-train{fraction:g}-seed{seed}"


def run_label_curves(config: LabelCurveConfig) -> Path:
    """Train (or reuse) every cell; write ``label_curves.csv``, the paired CSV, the report and
    the PNG."""
    specs = lines(config)
    downstream = down.devices(config.finetune, config.detect, config.downstream)
    check_study(config, specs, config.seeds, downstream)  # before anything is written
    out = RunDir(Path(config.out)).create()
    out.write_config(config)
    points = []
    steps = [(seed, model) for seed in config.seeds for model in specs]
    bar = tqdm(steps, desc="label fractions", unit="line", disable=not config.progress)
    for seed, model in bar:
        bar.set_postfix_str(f"{model.name} seed {seed}")
        encoder = ensure_encoder(config, model, seed)
        for downstream in config.downstream:
            for fraction in config.fractions:
                name = cell_name(model.name, downstream, fraction, seed)
                cfg = down.cell_config(
                    config.finetune,
                    config.detect,
                    downstream,
                    encoder=encoder,
                    train_fraction=fraction,
                    seed=seed,
                    out=str(out.root / "cells" / name),
                    progress=False,
                )
                results, _ = run_cell(cfg, down.trainer(downstream), config.progress, name)
                points.append(
                    CurvePoint(model.name, downstream, fraction, seed, results, Path(cfg.out))
                )
    write_results_csv(
        [_csv_row(p) for p in points], out.path("label_curves.csv"), csv_columns(config)
    )
    diffs = paired_differences(points)
    atomic_write_text(out.path("label_curves_paired.csv"), paired_differences_csv(diffs))
    atomic_write_text(out.path("report.md"), render_report(config, points, diffs))
    plot_label_curves(points, out.path("label_curves.png"))
    return out.path("label_curves.csv")


def csv_columns(config: LabelCurveConfig) -> list[str]:
    metrics = [m for d in config.downstream for m in down.kept_metrics(d)]
    return [
        "encoder",
        "train_fraction",
        "seed",
        "train_images",
        *dict.fromkeys(metrics),
        "downstream",
        "wall_s",
    ]


def _csv_row(point: CurvePoint) -> dict[str, Any]:
    return {
        "encoder": point.line,
        "train_fraction": f"{point.fraction:g}",
        "seed": point.seed,
        "train_images": point.results["train_images"],
        **{k: float(point.results[k]) for k in down.kept_metrics(point.downstream)},
        "downstream": point.downstream,
        "wall_s": cell_wall_s(point.folder),
    }


class CurveDifference(NamedTuple):
    """One compared point: ``line`` - ``baseline`` on ``metric`` at ``fraction`` over ``seeds``,
    at 95 % (``diff``) and at the Bonferroni ``family`` level (``strict``)."""

    line: str
    baseline: str
    metric: str
    fraction: float
    seeds: int
    diff: PairedDifference
    strict: PairedDifference
    family: float


def paired_differences(points: list[CurvePoint], n_boot: int = 2000) -> list[CurveDifference]:
    """metric(line) - metric(first line) at each fraction and downstream model, paired over the
    shared seeds (the U-Net's IoU, Mask R-CNN's mask AP).

    As in the experiment report (``stats.paired_iou_difference``): with >= 2 seeds a paired t
    interval over seeds (``basis`` seeds-t, with ``p_value`` and ``mde``, the smallest |Δ|
    detectable with 80% power at 95%); with one seed a paired bootstrap over test images,
    conditional on that one training run (``images-bootstrap-1-run``), for the U-Net's IoU only
    (mask AP is not a sum over images: ``basis`` none). ``strict`` is the interval at the
    Bonferroni level 1 - 0.05/m over the m comparisons.
    """
    first = points[0].line
    at = {(p.line, p.downstream, p.fraction, p.seed): p for p in points}
    compared = []
    for downstream in dict.fromkeys(p.downstream for p in points):
        for line in dict.fromkeys(p.line for p in points if p.line != first):
            mine = [p for p in points if p.line == line and p.downstream == downstream]
            for fraction in sorted({p.fraction for p in mine}):
                seeds = sorted(p.seed for p in mine if p.fraction == fraction)
                seeds = [s for s in seeds if (first, downstream, fraction, s) in at]
                if not seeds:
                    continue
                pairs = [
                    (at[line, downstream, fraction, s], at[first, downstream, fraction, s])
                    for s in seeds
                ]
                values = (
                    [_seed_value(m, len(seeds)) for m, _ in pairs],
                    [_seed_value(b, len(seeds)) for _, b in pairs],
                )
                compared.append((line, downstream, fraction, len(seeds), values))
    family = 1 - 0.05 / max(len(compared), 1)
    return [
        CurveDifference(
            line,
            first,
            down.metric(downstream),
            fraction,
            n_seeds,
            paired_iou_difference(*values, n_boot=n_boot),
            paired_iou_difference(*values, n_boot=n_boot, level=family),
            family,
        )
        for line, downstream, fraction, n_seeds, values in compared
    ]


def paired_differences_csv(diffs: list[CurveDifference]) -> str:
    """The differences as ``label_curves_paired.csv`` (``family_*``: the Bonferroni interval)."""
    rows = [
        "encoder,baseline,metric,train_fraction,seeds,delta,low,high,"
        "basis,p_value,mde,family_level,family_low,family_high"
    ]
    for c in diffs:
        d = c.diff
        rows.append(
            f"{c.line},{c.baseline},{c.metric},{c.fraction:g},{c.seeds},"
            f"{d.mean:.4f},{d.low:.4f},{d.high:.4f},"
            f"{d.basis},{d.p_value:.4g},{d.mde:.4f},"
            f"{c.family:.4g},{c.strict.low:.4f},{c.strict.high:.4f}"
        )
    return "\n".join(rows) + "\n"


def render_report(
    config: LabelCurveConfig, points: list[CurvePoint], diffs: list[CurveDifference]
) -> str:
    """``report.md``: per metric a table of lines x fractions (mean and 95 % t-interval over
    seeds), then every paired difference from the first line with its verdict."""
    finetune = config.finetune
    lines = [
        "# Label-fraction curves (seed 2 and seed 003, Fig. 10)",
        "",
        f"Data `{finetune.source}` (`{finetune.root}`, `{finetune.source_options}`, test splits "
        f"{finetune.test_splits}); nested shares of the train images; seeds {config.seeds}. "
        f"Pretrained lines: `{config.pretrain}` with each model's own keys.",
    ]
    fractions = sorted({p.fraction for p in points})
    for downstream in config.downstream:
        key = down.metric(downstream)
        mine = [p for p in points if p.downstream == downstream]
        lines += [
            "",
            f"{down.METRIC_NAMES[key]} on the test images, mean and 95 % t-interval over seeds "
            "(clipped to [0, 1]); train images in brackets:",
            "",
            "| line | " + " | ".join(_fraction_head(mine, f) for f in fractions) + " |",
            "|---" * (len(fractions) + 1) + "|",
        ]
        for line in dict.fromkeys(p.line for p in mine):
            cells = [
                mean_cell([p.results[key] for p in mine if p.line == line and p.fraction == f])
                for f in fractions
            ]
            lines.append(f"| {line} | " + " | ".join(cells) + " |")
    if diffs:
        lines += [
            "",
            f"Paired difference from {diffs[0].baseline} over seeds: 95 % interval, then the "
            f"Bonferroni interval at {diffs[0].family:.4g} over the {len(diffs)} comparisons "
            "(the verdict reads the latter); MDE: the smallest difference these seeds detect "
            "with 80 % power at 95 %.",
            "",
            *paired_table(
                ["line", "metric", "fraction"],
                [
                    ([c.line, c.metric, f"{c.fraction:g}"], c.diff, c.strict, c.diff.mde)
                    for c in diffs
                ],
            ),
        ]
    if len(config.seeds) < 2:
        lines += ["", "One seed: no interval says anything about another training run."]
    return "\n".join(lines) + "\n"


def _fraction_head(points: list[CurvePoint], fraction: float) -> str:
    """A column head: the fraction and its train images (a range where seeds differ)."""
    counts = sorted({p.results["train_images"] for p in points if p.fraction == fraction})
    images = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
    return f"{fraction:.0%} ({images})"


def _seed_value(point: CurvePoint, n_seeds: int) -> dict[str, np.ndarray] | float:
    """A cell's compared metric; with one seed the U-Net's per-image counts when readable."""
    value = point.results.get(down.metric(point.downstream))
    if point.downstream != "unet" or (n_seeds >= 2 and value is not None):
        return float(value)
    try:
        return read_per_image(Path(point.folder))
    except OSError:
        if value is not None:
            return float(value)
        raise


#: the panels of the PNG: (downstream model, result key, axis label)
PANELS = (
    ("unet", "iou", "U-Net test IoU"),
    ("unet", "average_precision", "U-Net test soft-mask AP"),
    ("maskrcnn", "mask_ap", "Mask R-CNN test mask AP"),
)


def plot_label_curves(points: list[CurvePoint], path: Path) -> None:
    """One panel per metric: mean and 95 % t-interval over seeds against the fraction."""
    panels = [p for p in PANELS if any(q.downstream == p[0] for q in points)]
    fig, axes = plt.subplots(
        1, len(panels), figsize=(5 * len(panels), 4), squeeze=False, layout="constrained"
    )
    for ax, (downstream, key, name) in zip(axes[0], panels, strict=True):
        mine = [p for p in points if p.downstream == downstream]
        highest = 0.0
        for line in dict.fromkeys(p.line for p in mine):
            fractions = sorted({p.fraction for p in mine if p.line == line})
            # every metric lies in [0, 1]; t-intervals over 2-3 seeds reach beyond, so clip
            stats = [
                mean_interval(
                    [p.results[key] for p in mine if p.line == line and p.fraction == f],
                    bounds=UNIT,
                )
                for f in fractions
            ]
            highest = max([highest, *(s.mean if np.isnan(s.high) else s.high for s in stats)])
            ax.errorbar(
                fractions,
                [s.mean for s in stats],
                yerr=error_bars(stats),
                marker="o",
                capsize=3,
                label=line,
            )
        ax.set_xlabel("fraction of training images")
        ax.set_ylabel(f"{name}\n(mean, 95% t-interval over seeds)")
        # the metrics lie in [0, 1], but mask AP at a CPU budget stays near 0.02: the axis
        # follows the highest interval so that such curves are not a flat line at the bottom
        ax.set_ylim(0, min(1.0, 1.15 * highest) if highest > 0 else 1.0)
        ax.grid(alpha=0.3)
    axes[0][0].legend()
    save_figure(fig, path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(
        parser,
        LabelCurveConfig,
        notes="each cell sets its own encoder, train_fraction, seed, out and progress (false) "
        "of finetune or detect; detect takes its data keys from finetune\n"
        "example: sslseg label-curves encoders=[random,runs/simclr/encoder.pt] "
        "finetune.source=oxford-pet\n    finetune.root=../shared/data/oxford-iiit-pet\n"
        "         sslseg label-curves configs/label-curves/pv01-fig10-cpu.yaml",
    )


def run(args: argparse.Namespace) -> int:
    csv_path = run_label_curves(config_from_args(args))
    print(csv_path.with_name("report.md").read_text())
    print(f"per cell: {csv_path}; paired: {csv_path.with_name('label_curves_paired.csv')}")
    print(f"curves: {csv_path.with_suffix('.png')}")
    return 0
