"""``results.csv``, ``report.md`` and the figures of an experiment grid."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sslseg.experiments.stats import Interval, mean_interval, paired_iou_difference  # noqa: E402
from sslseg.runs import atomic_write_text  # noqa: E402

TABLE_METRICS = [
    ("iou", "IoU"),
    ("f1", "F1"),
    ("dice_loss", "Dice"),
    ("focal_loss", "Focal"),
    ("bce", "BCE"),
    ("recall", "Recall"),
    ("accuracy", "Accuracy"),
]
CSV_FIELDS = [
    "model",
    "label",
    "dev_fraction",
    "seed",
    "iou",
    "f1",
    "dice_loss",
    "focal_loss",
    "bce",
    "recall",
    "accuracy",
    "precision",
    "iou_per_image",
    "train_seconds",
    "run",
]


def write_results_csv(rows: list[dict[str, Any]], path: Path) -> None:
    lines = [",".join(CSV_FIELDS)]
    for row in rows:
        lines.append(",".join(_csv_value(row.get(k, "")) for k in CSV_FIELDS))
    atomic_write_text(path, "\n".join(lines) + "\n")


def _csv_value(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def read_results_csv(path: Path) -> list[dict[str, Any]]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        for key in CSV_FIELDS:
            if key in ("model", "label", "run"):
                continue
            row[key] = int(row[key]) if key == "seed" else float(row[key])
    return rows


def read_per_image(run: Path) -> dict[str, np.ndarray]:
    """Per-image counts of a fine-tuning run, in test-set order."""
    with open(Path(run) / "test_per_image.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {k: np.array([float(r[k]) for r in rows]) for k in ("tp", "fp", "fn")}


def _fmt(interval: Interval, digits: int = 3) -> str:
    if np.isnan(interval.low):
        return f"{interval.mean:.{digits}f}"
    return f"{interval.mean:.{digits}f} ± {interval.half_width:.{digits}f}"


def _groups(rows: list[dict[str, Any]]) -> dict[tuple[str, float], list[dict[str, Any]]]:
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["model"], row["dev_fraction"]), []).append(row)
    return groups


def render_report(
    rows: list[dict[str, Any]],
    baseline: str = "baseline",
    n_boot: int = 2000,
    title: str = "Experiment report",
) -> str:
    """Table 4.1 with 95% intervals over seeds, then paired IoU differences to the baseline."""
    groups = _groups(rows)
    models = list(dict.fromkeys(r["model"] for r in rows))
    fractions = sorted({r["dev_fraction"] for r in rows}, reverse=True)
    seeds = sorted({r["seed"] for r in rows})
    out = [
        f"# {title}",
        "",
        f"{len(rows)} runs; seeds {seeds}. Each cell: mean ± half-width of the 95% Student-t "
        "interval over seeds (no interval with a single seed). IoU, F1, recall and accuracy "
        "are dataset-level; Dice, Focal and BCE are losses averaged per test image.",
        "",
        "| ID | Model | Loss | Dev split | n | " + " | ".join(t for _, t in TABLE_METRICS) + " |",
        "|---" * (5 + len(TABLE_METRICS)) + "|",
    ]
    ident = 0
    for model in models:
        for fraction in fractions:
            group = groups.get((model, fraction))
            if not group:
                continue
            cells = [_fmt(mean_interval([r[k] for r in group])) for k, _ in TABLE_METRICS]
            label = group[0].get("label") or model
            out.append(
                f"| {ident} | {label} | BCE | {round(fraction * 100)} | {len(group)} | "
                + " | ".join(cells)
                + " |"
            )
            ident += 1
    out += [
        "",
        "## Is the gain over the baseline real?",
        "",
        "IoU(model) − IoU(baseline) at the same dev split and seed (same split, same test "
        "images). Interval: 95% hierarchical paired bootstrap (seeds, then test images, "
        f"{n_boot} replicates); a gain is called real when the interval excludes 0.",
        "",
        "| Model | Dev split | seeds | ΔIoU | 95% interval | verdict | after Bonferroni |",
        "|---|---|---|---|---|---|---|",
    ]
    compared = [
        (model, fraction, pairs)
        for model in models
        if model != baseline
        for fraction in fractions
        if (
            pairs := _paired(
                groups.get((model, fraction), []), groups.get((baseline, fraction), [])
            )
        )
    ]
    strict_level = 1 - 0.05 / max(len(compared), 1)
    verdicts = []
    for model, fraction, pairs in compared:
        runs = (
            [read_per_image(m["run"]) for m, _ in pairs],
            [read_per_image(b["run"]) for _, b in pairs],
        )
        diff = paired_iou_difference(*runs, n_boot=n_boot)
        # same bootstrap seed, so the same replicates, read at the family-wise level
        strict = paired_iou_difference(*runs, n_boot=n_boot, level=strict_level)
        verdicts.append((model, fraction, _verdict(diff), diff))
        out.append(
            f"| {pairs[0][0].get('label') or model} | {round(fraction * 100)} | "
            f"{len(pairs)} | {diff.mean:+.4f} | [{diff.low:+.4f}, {diff.high:+.4f}] | "
            f"{_verdict(diff)} | {_verdict(strict)} |"
        )
    out += [
        "",
        f"{len(compared)} comparison{'s' if len(compared) != 1 else ''}: at 95% each, about "
        f"{0.05 * len(compared):.1f} false calls are expected when nothing differs; the last "
        "column holds each verdict at the "
        f"Bonferroni level 1 − 0.05/{max(len(compared), 1)}.",
        "",
        "## Conclusion",
        "",
    ]
    if not verdicts:
        out.append("No pretrained model shares seeds with the baseline, so nothing is compared.")
    for model, fraction, verdict, diff in verdicts:
        out.append(
            f"- {model} at dev {fraction:g}: {verdict} (ΔIoU {diff.mean:+.4f}, 95% "
            f"[{diff.low:+.4f}, {diff.high:+.4f}])."
        )
    return "\n".join(out) + "\n"


def _verdict(diff: Interval) -> str:
    if diff.low > 0:
        return "real gain"
    if diff.high < 0:
        return "real loss"
    return "no significant difference"


def _paired(model_rows: list[dict], base_rows: list[dict]) -> list[tuple[dict, dict]]:
    base = {r["seed"]: r for r in base_rows}
    return [
        (r, base[r["seed"]])
        for r in sorted(model_rows, key=lambda r: r["seed"])
        if r["seed"] in base
    ]


def plot_iou_vs_fraction(rows: list[dict[str, Any]], path: Path) -> None:
    """Test IoU against dev fraction, one line per model, 95% interval error bars."""
    groups = _groups(rows)
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for model in dict.fromkeys(r["model"] for r in rows):
        fractions = sorted(f for m, f in groups if m == model)
        intervals = [mean_interval([r["iou"] for r in groups[(model, f)]]) for f in fractions]
        means = np.array([i.mean for i in intervals])
        err = np.nan_to_num(np.array([i.half_width for i in intervals]))
        label = groups[(model, fractions[0])][0].get("label") or model
        ax.errorbar(fractions, means, yerr=err, marker="o", capsize=4, label=label)
    ax.set_xlabel("development fraction of the dataset")
    ax.set_ylabel("test IoU (dataset-level)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_figure41(panels: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]], path: Path) -> None:
    """Figure 4.1: for each model, rows of image / ground truth / prediction."""
    n_rows = sum(len(images) for _, images, _, _ in panels)
    fig, axes = plt.subplots(n_rows, 3, figsize=(6, 2 * n_rows), squeeze=False)
    row = 0
    for label, images, masks, probs in panels:
        for image, mask, prob in zip(images, masks, probs, strict=True):
            shown = np.where(mask == 255, 0.5, mask.astype(float))
            for col, data in enumerate((image, shown, prob > 127)):
                axes[row, col].imshow(data, cmap=None if col == 0 else "gray", vmin=0, vmax=1)
                axes[row, col].set_xticks([])
                axes[row, col].set_yticks([])
            axes[row, 0].set_ylabel(label, fontsize=8)
            row += 1
    for col, name in enumerate(("image", "ground truth", "prediction")):
        axes[0, col].set_title(name, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
