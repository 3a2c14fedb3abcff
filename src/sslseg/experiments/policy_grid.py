"""Seed 003's Fig. 9 as one command: pretraining methods x view policies, each encoder then
fine-tuned downstream (U-Net foreground IoU and Mask R-CNN mask AP) and compared with random
init over seeds.

Every (method, policy, seed) is pretrained once through the experiment grid's pretraining
(``<out>/pretrain/<method>-<policy>-seed<seed>``, reused while its resolved config is unchanged)
on ``pretrain_source``, leaving out the downstream test share. Each encoder, and the
``baseline`` encoder (random init), then trains one cell per downstream model and seed in
``<out>/cells/<model>-<downstream>-seed<seed>``: ``finetune`` (U-Net) or ``detect`` (Mask
R-CNN). The detection cells read the same data as the U-Net cells (``finetune``'s ``source``,
``root``, ``source_options``, split keys); ``detect`` sets the rest (side, epochs, instances).
A finished cell is reused while its config and encoder file are unchanged, a killed one resumes.

Every (method, policy) is compared with the baseline on each downstream metric by the paired
difference over seeds (Student t over per-seed differences, ``docs/statistics.md``), at 95 %
and at the Bonferroni level 1 - 0.05/m over the m comparisons of the study. Outputs:
``results.csv`` (one row per cell), ``paired.csv``, ``heatmap.png`` (methods x policies, the
mean difference with its 95 % interval, * where the Bonferroni interval excludes 0) and
``report.md``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    check_study,
    ensure_encoder,
    run_cell,
)
from sslseg.experiments.report import (  # noqa: E402
    mean_cell,
    paired_table,
    verdict,
    write_results_csv,
)
from sslseg.experiments.stats import (  # noqa: E402
    PairedDifference,
    paired_iou_difference,
)
from sslseg.runs import RunDir, atomic_write_text  # noqa: E402
from sslseg.seg.finetune import FinetuneConfig  # noqa: E402

BASELINE = "random"  # the baseline row's model name


@dataclass
class PolicyGridConfig:
    """Every key of ``sslseg policy-grid``."""

    out: str = "runs/policy-grid"  # the study's folder
    methods: list[str] = field(default_factory=lambda: ["simclr", "byol"])
    policies: list[str] = field(default_factory=lambda: ["default", "sgd+default", "sgd"])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    baseline: str = "random"  # the reference encoder: random | imagenet | PATH of an encoder.pt
    pretrain_source: str = "sample"  # unlabelled images the encoders are pretrained on
    pretrain_root: str = ""
    # keys of `sslseg pretrain` every encoder shares (method, policy, source, root and seed
    # are set per encoder)
    pretrain: dict[str, Any] = field(default_factory=lambda: {"side": 64, "epochs": 10})
    downstream: list[str] = field(default_factory=lambda: ["unet", "maskrcnn"])
    # the U-Net cells, and the data of every cell (seed, encoder, out, progress set per cell)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    # the Mask R-CNN cells (their data keys come from finetune; seed, encoder, out, progress
    # set per cell)
    detect: DetectConfig = field(default_factory=DetectConfig)
    progress: bool = True  # a bar over the cells and pretraining's bars

    def __post_init__(self) -> None:
        from sslseg.ssl.registry import REGISTRY

        for key, values in (("methods", self.methods), ("policies", self.policies)):
            require(len(values) > 0, key, "at least one is needed")
            require(len(set(values)) == len(values), key, f"repeats a name: {values}")
        unknown = [m for m in self.methods if m not in REGISTRY]
        require(not unknown, "methods", f"unknown {unknown}; choose from {sorted(REGISTRY)}")
        require(len(self.seeds) > 0, "seeds", "at least one seed is needed")
        down.check_downstream(self.downstream)
        require(bool(self.pretrain_source), "pretrain_source", "must name a data source")

    def pretrain_holdout(self) -> float:
        """Pretraining on the downstream source leaves out its test share."""
        return self.finetune.test_fraction


def policy_slug(policy: str) -> str:
    return policy.replace("+", "-")


def models(config: PolicyGridConfig) -> list[ModelSpec]:
    """The baseline, then one model per (method, policy), methods outer."""
    return [
        ModelSpec(
            BASELINE,
            "random init" if config.baseline == "random" else config.baseline,
            encoder=config.baseline,
        ),
        *(
            ModelSpec(
                f"{method}-{policy_slug(policy)}",
                f"{method} {policy}",
                config.pretrain_source,
                config.pretrain_root,
                pretrain={"method": method, "policy": policy},
            )
            for method in config.methods
            for policy in config.policies
        ),
    ]


def cell_config(
    config: PolicyGridConfig, downstream: str, model: ModelSpec, seed: int, encoder: str
) -> FinetuneConfig | DetectConfig:
    """A cell's resolved config: the study's section for that downstream model, quiet."""
    out = str(Path(config.out) / "cells" / f"{model.name}-{downstream}-seed{seed}")
    return down.cell_config(
        config.finetune,
        config.detect,
        downstream,
        seed=seed,
        encoder=encoder,
        out=out,
        progress=False,
    )


def run_policy_grid(config: PolicyGridConfig) -> Path:
    """Pretrain (or reuse) every encoder, train (or reuse) every cell; write CSVs, PNG, report."""
    specs = models(config)
    downstream = down.devices(config.finetune, config.detect, config.downstream)
    check_study(config, specs[1:], config.seeds, downstream)  # before anything is written
    out = RunDir(Path(config.out)).create()
    out.write_config(config)
    steps = [(seed, model) for seed in config.seeds for model in specs]
    rows = []
    bar = tqdm(steps, desc="policy grid", unit="encoder", disable=not config.progress)
    for seed, model in bar:
        bar.set_postfix_str(f"{model.name} seed {seed}")
        encoder = ensure_encoder(config, model, seed)
        for downstream in config.downstream:
            cfg = cell_config(config, downstream, model, seed, encoder)
            name = f"{model.name}-{downstream}-seed{seed}"
            results, _ = run_cell(cfg, down.trainer(downstream), config.progress, name)
            rows.append(
                {
                    "model": model.name,
                    "method": model.pretrain.get("method", ""),
                    "policy": model.pretrain.get("policy", ""),
                    "downstream": downstream,
                    "seed": seed,
                    **{k: float(results[k]) for k in down.kept_metrics(downstream)},
                    "wall_s": cell_wall_s(cfg.out),
                }
            )
    columns = list(dict.fromkeys(k for r in rows for k in r))  # unet and maskrcnn keep others
    write_results_csv(rows, out.path("results.csv"), columns)
    diffs = paired_differences(rows, config)
    atomic_write_text(out.path("paired.csv"), paired_csv(diffs))
    plot_heatmap(diffs, config, out.path("heatmap.png"))
    atomic_write_text(out.path("report.md"), render_report(config, rows, diffs))
    return out.path("report.md")


@dataclass(frozen=True)
class Comparison:
    method: str
    policy: str
    metric: str
    diff: PairedDifference  # at 95 %
    family: PairedDifference  # at the Bonferroni level of the study


def paired_differences(rows: list[dict[str, Any]], config: PolicyGridConfig) -> list[Comparison]:
    """metric(method, policy) - metric(baseline), paired over seeds, for each downstream
    metric; each at 95 % and at the Bonferroni level over every comparison made here."""
    value = {
        (r["model"], r["downstream"], r["seed"]): r[down.metric(r["downstream"])] for r in rows
    }
    pairs = []
    for downstream in config.downstream:
        metric = down.metric(downstream)
        for method in config.methods:
            for policy in config.policies:
                name = f"{method}-{policy_slug(policy)}"
                model = [value[name, downstream, s] for s in config.seeds]
                base = [value[BASELINE, downstream, s] for s in config.seeds]
                pairs.append((method, policy, metric, model, base))
    level = 1 - 0.05 / max(len(pairs), 1)
    return [
        Comparison(
            method,
            policy,
            metric,
            paired_iou_difference(model, base),
            paired_iou_difference(model, base, level=level),
        )
        for method, policy, metric, model, base in pairs
    ]


def paired_csv(diffs: list[Comparison]) -> str:
    lines = [
        "method,policy,metric,seeds,delta,low,high,basis,p_value,mde,family_level,"
        "family_low,family_high"
    ]
    lines += [
        f"{c.method},{c.policy},{c.metric},{d.n_seeds},{d.mean:.4f},{d.low:.4f},{d.high:.4f},"
        f"{d.basis},{d.p_value:.4g},{f.mde:.4f},{f.level:.4g},{f.low:.4f},{f.high:.4f}"
        for c in diffs
        for d, f in [(c.diff, c.family)]
    ]
    return "\n".join(lines) + "\n"


def _significant(c: Comparison) -> bool:
    return verdict(c.family) in ("real gain", "real loss")


def plot_heatmap(diffs: list[Comparison], config: PolicyGridConfig, path: Path) -> None:
    """One panel per downstream metric: rows methods, columns policies, colour the mean
    difference to the baseline, text the mean and 95 % interval, * the Bonferroni verdict."""
    metrics = list(dict.fromkeys(c.metric for c in diffs))
    n_m, n_p = len(config.methods), len(config.policies)
    # constrained layout keeps the suptitle clear of the panel titles
    fig, axes = plt.subplots(
        1,
        len(metrics),
        figsize=(1.2 + 2.3 * n_p * len(metrics), 1.4 + 0.9 * n_m),
        squeeze=False,
        layout="constrained",
    )
    for ax, metric in zip(axes[0], metrics, strict=True):
        cells = {(c.method, c.policy): c for c in diffs if c.metric == metric}
        grid = np.array([[cells[m, p].diff.mean for p in config.policies] for m in config.methods])
        scale = max(float(np.abs(grid).max()), 1e-3)
        image = ax.imshow(grid, cmap="RdBu", vmin=-scale, vmax=scale, aspect="auto")
        for i, method in enumerate(config.methods):
            for j, policy in enumerate(config.policies):
                c = cells[method, policy]
                text = f"{c.diff.mean:+.3f}{'*' if _significant(c) else ''}"
                if c.diff.basis == "seeds-t":
                    text += f"\n[{c.diff.low:+.3f}, {c.diff.high:+.3f}]"
                # RdBu is dark at both ends: white text there, black in the pale middle
                dark = abs(c.diff.mean) > 0.6 * scale
                colour = "white" if dark else "black"
                ax.text(j, i, text, ha="center", va="center", fontsize=7, color=colour)
        ax.set_xticks(range(n_p), config.policies, fontsize=8)
        ax.set_yticks(range(n_m), config.methods, fontsize=8)
        ax.set_title(f"Δ {down.METRIC_NAMES[metric]} vs {config.baseline}", fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.05)
    fig.suptitle(
        f"{len(config.seeds)} seeds; 95 % paired t; * Bonferroni over {len(diffs)}", fontsize=9
    )
    save_figure(fig, path)


def render_report(
    config: PolicyGridConfig, rows: list[dict[str, Any]], diffs: list[Comparison]
) -> str:
    seeds = list(config.seeds)
    lines = [
        "# Pretraining methods x view policies, downstream (seed 003, Fig. 9)",
        "",
        f"Pretrained on `{config.pretrain_source}` (`{config.pretrain_root}`) with "
        f"`{config.pretrain}`, leaving out the downstream test share; downstream data "
        f"`{config.finetune.source}` (`{config.finetune.root}`, `{config.finetune.source_options}`"
        f", test splits {config.finetune.test_splits}); seeds {seeds}.",
        "",
        "Test metrics, mean and 95 % t-interval over seeds (clipped to [0, 1]); wall time the "
        "sum over this model's cells:",
        "",
        "| model | "
        + " | ".join(down.METRIC_NAMES[down.metric(d)] for d in config.downstream)
        + " | wall (s) |",
        "|---" * (len(config.downstream) + 2) + "|",
    ]
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        cells = [
            mean_cell([r[down.metric(d)] for r in mine if r["downstream"] == d])
            for d in config.downstream
        ]
        wall = sum(r["wall_s"] for r in mine if np.isfinite(r["wall_s"]))
        lines.append(f"| {model} | " + " | ".join(cells) + f" | {wall:.0f} |")
    family = diffs[0].family.level if diffs else 0.95
    lines += [
        "",
        f"Paired difference from {config.baseline} over seeds: 95 % interval, then the "
        f"Bonferroni interval at {family:.4g} over the {len(diffs)} comparisons "
        "(the verdict reads the latter); MDE: the smallest difference these seeds detect with "
        "80 % power at that level.",
        "",
        *paired_table(
            ["method", "policy", "metric"],
            [([c.method, c.policy, c.metric], c.diff, c.family, c.family.mde) for c in diffs],
        ),
    ]
    if len(seeds) < 2:
        lines += ["", "One seed: no interval says anything about another training run."]
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(
        parser,
        PolicyGridConfig,
        notes="each encoder is pretrained with pretrain + {method, policy}; each cell sets "
        "seed, encoder, out and progress (false) of finetune or detect; detect takes its data "
        "keys from finetune\n"
        "example: sslseg policy-grid configs/policy-grid/pv01-cpu.yaml seeds=[0,1,2]",
    )


def run(args: argparse.Namespace) -> int:
    report = run_policy_grid(config_from_args(args))
    print(report.read_text())
    print(f"heat map: {report.with_name('heatmap.png')}")
    return 0
