"""Seed 003's classification study (§3.4.3, Fig. 11) as one command: encoders pretrained per
model and seed, then a linear probe at label fractions on their frozen features.

The models and their pretraining work as in the experiment grid (``models``, the shared
``pretrain`` keys and each model's own ``pretrain`` keys over them, e.g. its view policy): each
(model, seed) is pretrained once in ``<out>/pretrain/<model>-seed<seed>`` and reused while its
resolved config is unchanged. Each seed's encoders are then scored together by
:func:`sslseg.eval.command.evaluate` in ``<out>/evaluate/seed<seed>`` (the seed fixes random
init, the label subsets and any hold-out, so every model of a seed sees the same labels); a
finished evaluation is reused while its config and its encoder files are unchanged.

Every other model is compared with the first at each label fraction (and in kNN) by the paired
accuracy difference over seeds: the Student t over per-seed differences of
``docs/statistics.md``, at 95 % and at the Bonferroni level 1 - 0.05/m over the study's m
comparisons. Outputs: ``linear_curves.csv`` (one row per model, seed and fraction),
``linear_curves_paired.csv``, ``linear_curves.png`` (mean and 95 % t-interval over seeds) and
``report.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from tqdm import tqdm  # noqa: E402

from sslseg.config import (  # noqa: E402
    add_config_arguments,
    changed_key,
    config_from_args,
    config_to_dict,
    require,
)
from sslseg.eval.command import EvaluateConfig  # noqa: E402
from sslseg.eval.plots import save_figure  # noqa: E402
from sslseg.experiments.grid import (  # noqa: E402
    MADE_BY,
    NO_RESULT_KEYS,
    ModelSpec,
    check_models,
    check_study,
    ensure_encoder,
)
from sslseg.experiments.report import error_bars, mean_cell  # noqa: E402
from sslseg.experiments.stats import (  # noqa: E402
    UNIT,
    PairedDifference,
    mean_interval,
    paired_iou_difference,
)
from sslseg.runs import RunDir, atomic_write_text  # noqa: E402

KNN = "knn"  # the fraction column's value for the kNN rows


def fig11_models() -> list[ModelSpec]:
    """Fig. 11: random init against SimCLR under the policies default, sgd+default and sgd."""
    cifar = {"pretrain_source": "cifar10", "pretrain_root": "../shared/data/cifar10"}
    train = {"split": "train"}  # cifar10's test split is what is scored

    def simclr(policy: str) -> ModelSpec:
        name = "simclr-" + policy.replace("+", "-")
        pretrain = {"policy": policy, "source_options": train}
        return ModelSpec(name, f"SimCLR {policy}", **cifar, pretrain=pretrain)

    return [ModelSpec("random", "random init"), *map(simclr, ("default", "sgd+default", "sgd"))]


def fig11_evaluate() -> EvaluateConfig:
    return EvaluateConfig(
        source="cifar10", root="../shared/data/cifar10", side=64, tsne=False, progress=False
    )


@dataclass
class LinearCurveConfig:
    """Every key of ``sslseg linear-curves``."""

    out: str = "runs/linear-curves"  # the study's folder
    models: list[ModelSpec] = field(default_factory=fig11_models)  # the first is the baseline
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    # keys of `sslseg pretrain` every pretrained model shares (source, root and seed are set
    # per model, a model's own `pretrain` keys win)
    pretrain: dict[str, Any] = field(
        default_factory=lambda: {"method": "simclr", "side": 64, "epochs": 10}
    )
    # the scoring (encoders, seed, out and progress are set per seed)
    evaluate: EvaluateConfig = field(default_factory=fig11_evaluate)
    progress: bool = True  # a bar over the (model, seed) steps and pretraining's bars

    def __post_init__(self) -> None:
        check_models(self.models, self.seeds)
        require(self.evaluate.probes, "evaluate.probes", "must be true (the study is the probes)")

    def pretrain_holdout(self) -> float:
        """Sources without a test split leave out the evaluation's held-out share."""
        return self.evaluate.test_fraction


def evaluation_config(config: LinearCurveConfig, seed: int, encoders: list[str]) -> EvaluateConfig:
    return dataclasses.replace(
        config.evaluate,
        encoders=encoders,
        seed=seed,
        out=str(Path(config.out) / "evaluate" / f"seed{seed}"),
        progress=False,
    )


def made_by(cfg: EvaluateConfig) -> dict[str, Any]:
    """What a seed's scores depend on: the resolved config and each encoder file's hash."""
    from sslseg.eval.features import file_hash

    return {
        "config": config_to_dict(cfg),
        "encoder_hashes": [file_hash(Path(e)) if Path(e).is_file() else e for e in cfg.encoders],
    }


def evaluate_seed(config: LinearCurveConfig, seed: int, encoders: list[str]) -> dict[str, Any]:
    """One seed's ``results.json``, reused when finished under the same fingerprint."""
    from sslseg.eval.command import evaluate

    cfg = evaluation_config(config, seed, encoders)
    run, made = RunDir(Path(cfg.out)), made_by(cfg)
    old = run.read_json(MADE_BY) if run.root.exists() else None
    results = run.read_json("results.json") if old is not None else None
    if old is not None and results is not None:
        # the encoders are compared by content (a name where there is no file), so the same
        # files under other paths (the study rerun with out= spelled otherwise) are the same
        key = changed_key(old["config"], made["config"], NO_RESULT_KEYS | {"encoders"})
        if not key and old["encoder_hashes"] == made["encoder_hashes"]:
            return results
    if run.root.exists():
        shutil.rmtree(run.root)  # stale or unfinished: scored again from the cached features
    run.create().write_json(MADE_BY, made)
    return evaluate(cfg)


def run_linear_curves(config: LinearCurveConfig) -> Path:
    """Pretrain (or reuse) every (model, seed), score each seed; write the CSVs, PNG, report."""
    # before anything is written
    check_study(config, config.models, config.seeds, [config.evaluate.device])
    out = RunDir(Path(config.out)).create()
    out.write_config(config)
    steps = [(seed, model) for seed in config.seeds for model in config.models]
    bar = tqdm(steps, desc="linear curves", unit="encoder", disable=not config.progress)
    encoders: dict[int, list[str]] = {}
    for seed, model in bar:
        bar.set_postfix_str(f"{model.name} seed {seed}")
        encoders.setdefault(seed, []).append(ensure_encoder(config, model, seed))
    rows = []
    for seed in config.seeds:
        results = evaluate_seed(config, seed, encoders[seed])
        for model, row in zip(config.models, results["encoders"].values(), strict=True):
            rows.append({"model": model.name, "seed": seed, "fraction": KNN, "acc": row["knn_acc"]})
            rows += [
                {"model": model.name, "seed": seed, "fraction": r["fraction"], "acc": r["accuracy"]}
                for r in row["linear"]
            ]
    lines = ["model,seed,fraction,accuracy"]
    lines += [f"{r['model']},{r['seed']},{_fraction(r['fraction'])},{r['acc']:.6g}" for r in rows]
    atomic_write_text(out.path("linear_curves.csv"), "\n".join(lines) + "\n")
    diffs = paired_differences(rows, [m.name for m in config.models])
    atomic_write_text(out.path("linear_curves_paired.csv"), paired_csv(diffs))
    labels = {m.name: m.label or m.name for m in config.models}
    plot_linear_curves(rows, labels, out.path("linear_curves.png"))
    atomic_write_text(out.path("report.md"), render_report(config, rows, diffs, labels))
    return out.path("report.md")


def _fraction(fraction: float | str) -> str:
    return fraction if isinstance(fraction, str) else f"{fraction:g}"


Comparison = tuple[str, float | str, PairedDifference, PairedDifference]


def paired_differences(rows: list[dict[str, Any]], models: list[str]) -> list[Comparison]:
    """acc(model) - acc(first model) at each fraction and in kNN, paired over seeds, at 95 %
    and at the Bonferroni level over every comparison made here."""
    acc = {(r["model"], r["fraction"], r["seed"]): r["acc"] for r in rows}
    fractions = list(dict.fromkeys(r["fraction"] for r in rows))
    seeds = sorted({r["seed"] for r in rows})
    first = models[0]
    pairs = [
        (
            model,
            fraction,
            [acc[model, fraction, s] for s in seeds],
            [acc[first, fraction, s] for s in seeds],
        )
        for model in models[1:]
        for fraction in fractions
    ]
    family = 1 - 0.05 / max(len(pairs), 1)
    return [
        (m, f, paired_iou_difference(a, b), paired_iou_difference(a, b, level=family))
        for m, f, a, b in pairs
    ]


def paired_csv(diffs: list[Comparison]) -> str:
    lines = [
        "model,fraction,seeds,delta_acc,low,high,basis,p_value,mde,family_level,"
        "family_low,family_high"
    ]
    lines += [
        f"{m},{_fraction(f)},{d.n_seeds},{d.mean:.4f},{d.low:.4f},{d.high:.4f},{d.basis},"
        f"{d.p_value:.4g},{d.mde:.4f},{s.level:.4g},{s.low:.4f},{s.high:.4f}"
        for m, f, d, s in diffs
    ]
    return "\n".join(lines) + "\n"


def render_report(
    config: LinearCurveConfig,
    rows: list[dict[str, Any]],
    diffs: list[Comparison],
    labels: dict[str, str],
) -> str:
    fractions = list(dict.fromkeys(r["fraction"] for r in rows))
    seeds = sorted({r["seed"] for r in rows})
    heads = ["kNN" if f == KNN else f"{100 * f:g} %" for f in fractions]
    lines = [
        "# Linear evaluation at label fractions (seed 003 §3.4.3, Fig. 11)",
        "",
        f"Scored on `{config.evaluate.source}` (`{config.evaluate.root}`) at "
        f"{config.evaluate.side} px; pretraining: `{config.pretrain}`; seeds {seeds}.",
        "Test accuracy (%), mean and 95 % t-interval over seeds (clipped to [0, 100]):",
        "",
        "| model | " + " | ".join(heads) + " |",
        "|---" * (len(heads) + 1) + "|",
    ]
    for model, label in labels.items():
        cells = [
            mean_cell(
                [r["acc"] for r in rows if r["model"] == model and r["fraction"] == f], percent=True
            )
            for f in fractions
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    first = next(iter(labels.values()))
    family = diffs[0][3].level if diffs else 0.95
    lines += [
        "",
        f"Paired difference from {first} (points), 95 % interval, then the Bonferroni "
        f"interval at {family:.4g} over the {len(diffs)} comparisons:",
        "",
        "| model | fraction | Δ | 95 % | family | p |",
        "|---|---|---|---|---|---|",
    ]
    for model, fraction, d, s in diffs:
        head = "kNN" if fraction == KNN else f"{100 * fraction:g} %"
        lines.append(
            f"| {labels[model]} | {head} | {100 * d.mean:+.1f} | "
            f"[{100 * d.low:+.1f}, {100 * d.high:+.1f}] | "
            f"[{100 * s.low:+.1f}, {100 * s.high:+.1f}] | {d.p_value:.3g} |"
        )
    lines += ["", *_verdicts(diffs, labels, len(seeds)), ""]
    return "\n".join(lines)


def _verdicts(diffs: list[Comparison], labels: dict[str, str], n_seeds: int) -> list[str]:
    if n_seeds < 2:
        return ["One seed: no interval says anything about another training run."]
    out = []
    for model in dict.fromkeys(m for m, *_ in diffs):
        mine = [(f, d, s) for m, f, d, s in diffs if m == model and f != KNN]
        above = sum(s.low > 0 for _, _, s in mine)
        below = sum(s.high < 0 for _, _, s in mine)
        out.append(
            f"- {labels[model]}: above the baseline at {above} and below it at {below} of "
            f"{len(mine)} label fractions (Bonferroni intervals), "
            f"mean Δ {100 * sum(d.mean for _, d, _ in mine) / max(len(mine), 1):+.1f} points."
        )
    return out


def plot_linear_curves(rows: list[dict[str, Any]], labels: dict[str, str], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for model, label in labels.items():
        fractions = sorted({r["fraction"] for r in rows if r["fraction"] != KNN})
        stats = [
            mean_interval(
                [r["acc"] for r in rows if r["model"] == model and r["fraction"] == f], bounds=UNIT
            )
            for f in fractions
        ]
        ax.errorbar(
            [100 * f for f in fractions],
            [100 * s.mean for s in stats],
            yerr=100 * error_bars(stats),
            marker="o",
            capsize=3,
            label=label,
        )
    ax.set_xlabel("training labels used (%)")
    ax.set_ylabel("test accuracy (%), mean and 95% t over seeds")
    ax.set_title("Linear evaluation (Fig. 11)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(
        parser,
        LinearCurveConfig,
        notes="models: as in sslseg experiment, each with its own `pretrain` keys (e.g. "
        "{policy: sgd}); each seed sets evaluate.encoders, .seed, .out and .progress (false)\n"
        "example: sslseg linear-curves configs/linear-curves/cifar10-fig11.yaml seeds=[0,1,2]",
    )


def run(args: argparse.Namespace) -> int:
    report = run_linear_curves(config_from_args(args))
    print(report.read_text())
    print(f"curves: {report.with_name('linear_curves.png')}")
    return 0
