"""``results.csv``, ``report.md`` and the figures of an experiment grid."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sslseg.experiments.stats import (  # noqa: E402
    NON_NEGATIVE,
    UNIT,
    Interval,
    PairedDifference,
    mean_interval,
    paired_iou_difference,
    seeds_needed,
)
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
METRIC_BOUNDS = {
    "iou": UNIT,
    "f1": UNIT,
    "recall": UNIT,
    "accuracy": UNIT,
    "precision": UNIT,
    "iou_per_image": UNIT,
    "dice_loss": NON_NEGATIVE,
    "focal_loss": NON_NEGATIVE,
    "bce": NON_NEGATIVE,
}
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


def write_results_csv(
    rows: list[dict[str, Any]], path: Path, fields: list[str] | None = None
) -> None:
    """``rows`` as CSV with the columns ``fields`` (Table 4.1's by default), "" where missing."""
    fields = CSV_FIELDS if fields is None else fields
    lines = [",".join(fields)]
    for row in rows:
        lines.append(",".join(_csv_value(row.get(k, "")) for k in fields))
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
    """``mean ± half-width``; ``mean [low, high]`` once clipping made the interval asymmetric."""
    if np.isnan(interval.low):
        return f"{interval.mean:.{digits}f}"
    below, above = interval.mean - interval.low, interval.high - interval.mean
    if abs(below - above) > 1e-9:
        return f"{interval.mean:.{digits}f} [{interval.low:.{digits}f}, {interval.high:.{digits}f}]"
    return f"{interval.mean:.{digits}f} ± {interval.half_width:.{digits}f}"


def _groups(rows: list[dict[str, Any]]) -> dict[tuple[str, float], list[dict[str, Any]]]:
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["model"], row["dev_fraction"]), []).append(row)
    return groups


def _seed_values(pairs: list[tuple[dict, dict]]) -> tuple[list, list]:
    """What the comparison needs per seed: each run's IoU from ``results.csv`` with >= 2 seeds
    (run folders may be gone); per-image counts with one seed (for the image bootstrap),
    or the IoU again when they cannot be read (no interval then)."""
    if len(pairs) >= 2:
        return [m["iou"] for m, _ in pairs], [b["iou"] for _, b in pairs]
    (m, b), counts = pairs[0], []
    for row in (m, b):
        try:
            counts.append(read_per_image(Path(row["run"])) if row.get("run") else None)
        except OSError:
            counts.append(None)
    if None in counts:
        return [m["iou"]], [b["iou"]]
    return [counts[0]], [counts[1]]


def _interval_text(diff: PairedDifference) -> str:
    if diff.basis == "none":
        return "no interval: one seed and no per-image counts"
    return f"[{diff.low:+.4f}, {diff.high:+.4f}]"


def _basis_text(diff: PairedDifference) -> str:
    return {
        "seeds-t": "t over seeds",
        "images-bootstrap-1-run": "image bootstrap, conditional on one training run",
        "none": "one seed, no per-image counts",
    }[diff.basis]


def mean_cell(values: list[float], percent: bool = False) -> str:
    """A report's table cell: the mean over seeds and its 95 % t-interval clipped to [0, 1]
    (three decimals, or with ``percent`` in points with one)."""
    iv = mean_interval(values, bounds=UNIT)
    scale, form = (100, ".1f") if percent else (1, ".3f")
    mean, low, high = (format(scale * v, form) for v in (iv.mean, iv.low, iv.high))
    return mean if len(values) < 2 else f"{mean} [{low}, {high}]"


def paired_table(
    head: list[str], rows: list[tuple[list[str], PairedDifference, PairedDifference, float]]
) -> list[str]:
    """A report's table of paired differences, one row per ``(keys, diff, family, mde)``: the
    row's keys under ``head``, Δ, its 95 % interval, the family-wise interval, p, the MDE and
    the verdict (read from the family-wise interval)."""
    lines = [
        "| " + " | ".join([*head, "Δ", "95 %", "family", "p", "MDE", "verdict"]) + " |",
        "|---" * (len(head) + 6) + "|",
    ]
    for keys, d, f, mde in rows:
        values = [f"{d.mean:+.4f}", f"[{d.low:+.4f}, {d.high:+.4f}]"]
        values += [f"[{f.low:+.4f}, {f.high:+.4f}]", f"{d.p_value:.3g}", f"{mde:.4f}", verdict(f)]
        lines.append("| " + " | ".join([*keys, *values]) + " |")
    return lines


def verdict(diff: Interval) -> str:
    """The verdict an interval of a difference gives: real gain / loss, none, no interval."""
    if isinstance(diff, PairedDifference) and diff.basis == "none":
        return "no interval"
    if diff.low > 0:
        return "real gain"
    if diff.high < 0:
        return "real loss"
    return "no significant difference"


def render_report(
    rows: list[dict[str, Any]],
    baseline: str = "baseline",
    n_boot: int = 2000,
    title: str = "Experiment report",
    negligible: float = 0.02,
) -> str:
    """Table 4.1 with 95% intervals over seeds, then paired IoU differences to the baseline.

    Verdicts in the Conclusion are family-wise (Bonferroni over the report's m comparisons).
    A non-significant comparison is read with its MDE: "none larger than the MDE" when the MDE
    is at most ``negligible`` ΔIoU, else "too few seeds". Works from ``results.csv`` alone
    when every comparison has >= 2 seeds; one-seed comparisons need their run folders.
    """
    groups = _groups(rows)
    models = list(dict.fromkeys(r["model"] for r in rows))
    fractions = sorted({r["dev_fraction"] for r in rows}, reverse=True)
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
    m = max(len(compared), 1)
    out = _table_section(rows, groups, models, fractions, title)
    lines, results = _paired_section(compared, m, n_boot)
    out += lines
    out += _conclusion_section(results, m, negligible)
    return "\n".join(out) + "\n"


def _table_section(
    rows: list[dict[str, Any]],
    groups: dict[tuple[str, float], list[dict[str, Any]]],
    models: list[str],
    fractions: list[float],
    title: str,
) -> list[str]:
    """The title and Table 4.1: one row per (model, dev split), mean ± interval over seeds."""
    seeds = sorted({r["seed"] for r in rows})
    out = [
        f"# {title}",
        "",
        f"{len(rows)} runs; seeds {seeds}. Each cell: mean ± half-width of the 95% Student-t "
        "interval over seeds (no interval with a single seed); an interval that would cross a "
        "metric's bound (IoU, F1, recall and accuracy lie in [0, 1], losses are >= 0) is "
        "clipped there and shown as mean [low, high]. IoU, F1, recall and accuracy are "
        "dataset-level; Dice, Focal and BCE are losses averaged per test image.",
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
            cells = [
                _fmt(mean_interval([r[k] for r in group], bounds=METRIC_BOUNDS[k]))
                for k, _ in TABLE_METRICS
            ]
            label = group[0].get("label") or model
            out.append(
                f"| {ident} | {label} | BCE | {round(fraction * 100)} | {len(group)} | "
                + " | ".join(cells)
                + " |"
            )
            ident += 1
    return out


def _paired_section(
    compared: list[tuple[str, float, list[Any]]], m: int, n_boot: int
) -> tuple[list[str], list[tuple[str, str, float, PairedDifference, PairedDifference]]]:
    """The paired-difference table (each comparison at 95% and at the family-wise level)
    and the differences themselves."""
    strict_level = 1 - 0.05 / m
    fw = f"{100 * strict_level:.4g}%"
    out = [
        "",
        "## Is the gain over the baseline real?",
        "",
        "IoU(model) − IoU(baseline) at the same dev split and seed (same split, same test "
        "images). The seeds are the independent units: with two or more seeds the interval is "
        "the paired Student t interval over the per-seed differences, mean ± t(n−1) · sd / √n, "
        "and p its two-sided p-value (the test images' noise is inside each seed's "
        "difference). With one seed the interval is a paired bootstrap over test images "
        f"({n_boot} replicates): it is conditional on that one training run and says nothing "
        "about another. See docs/statistics.md.",
        "",
        f"{len(compared)} comparison{'s' if len(compared) != 1 else ''}: at 95% each, about "
        f"{0.05 * len(compared):.1f} false calls are expected when nothing differs, so verdicts "
        f"are family-wise: Bonferroni over the {m} comparison{'s' if m != 1 else ''}, each "
        f"interval at level 1 − 0.05/{m} = {fw}, which keeps the chance of any false call at "
        "or below 5%. MDE: the smallest true |ΔIoU| this many seeds would detect with 80% "
        "power at that family-wise level, from the observed seed-to-seed sd of the difference "
        "(itself uncertain with few seeds).",
        "",
        f"| Model | Dev split | seeds | basis | ΔIoU | 95% interval | p | {fw} interval "
        "(family-wise) | verdict (family-wise) | MDE |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    results = []
    for model, fraction, pairs in compared:
        values = _seed_values(pairs)
        diff = paired_iou_difference(*values, n_boot=n_boot)
        # same bootstrap seed, so the same replicates, read at the family-wise level
        strict = paired_iou_difference(*values, n_boot=n_boot, level=strict_level)
        label = pairs[0][0].get("label") or model
        results.append((model, label, fraction, diff, strict))
        p = "—" if np.isnan(diff.p_value) else f"{diff.p_value:.3f}"
        mde = "—" if np.isnan(strict.mde) else f"{strict.mde:.4f}"
        out.append(
            f"| {label} | {round(fraction * 100)} | {len(pairs)} | {_basis_text(diff)} | "
            f"{diff.mean:+.4f} | {_interval_text(diff)} | {p} | {_interval_text(strict)} | "
            f"{verdict(strict)} | {mde} |"
        )
    return out, results


def _conclusion_section(
    results: list[tuple[str, str, float, PairedDifference, PairedDifference]],
    m: int,
    negligible: float,
) -> list[str]:
    """One verdict line per comparison, at the report's family-wise level."""
    fw = f"{100 * (1 - 0.05 / m):.4g}%"
    out = ["", "## Conclusion", ""]
    if not results:
        out.append("No pretrained model shares seeds with the baseline, so nothing is compared.")
    else:
        out += [
            f"Verdicts at the family-wise level of this report (Bonferroni over {m} "
            f"comparison{'s' if m != 1 else ''}: intervals at {fw}). A design is called able "
            f"to rule out a difference when its MDE is at most {negligible:g} IoU.",
            "",
        ]
    for model, label, fraction, diff, strict in results:
        name = label if label == model else f"{label} ({model})"
        out.append(f"- {name} at dev {fraction:g}: {_conclusion(diff, strict, negligible)}")
    return out


def _conclusion(diff: PairedDifference, strict: PairedDifference, negligible: float) -> str:
    numbers = f"ΔIoU {diff.mean:+.4f}"
    if diff.basis == "none":
        return f"no interval: one seed and no per-image counts ({numbers})."
    numbers += f", {100 * strict.level:.4g}% {_interval_text(strict)}"
    called = verdict(strict)
    if diff.conditional_on_one_run:
        return (
            f"{called}, conditional on one training run ({numbers}): the interval covers only "
            "the choice of test images; another seed may well differ."
        )
    if called != "no significant difference":
        return f"{called} ({numbers}, p = {diff.p_value:.3g} before correction)."
    if strict.mde <= negligible:
        return (
            f"no significant difference, and none larger than the MDE {strict.mde:.3f}: a "
            f"true difference of that size would have been detected with 80% power ({numbers})."
        )
    needed = seeds_needed(strict.sd, negligible, strict.level)
    more = (
        f"; at the observed seed-to-seed sd about {needed} seeds would be needed for {negligible:g}"
        if needed
        else ""
    )
    return (
        f"no significant difference, but too few seeds to say there is none: with "
        f"{diff.n_seeds} seeds the design could not reliably detect (80% power) differences "
        f"smaller than {strict.mde:.3f} IoU{more} ({numbers})."
    )


def _paired(model_rows: list[dict], base_rows: list[dict]) -> list[tuple[dict, dict]]:
    base = {r["seed"]: r for r in base_rows}
    return [
        (r, base[r["seed"]])
        for r in sorted(model_rows, key=lambda r: r["seed"])
        if r["seed"] in base
    ]


def plot_iou_vs_fraction(rows: list[dict[str, Any]], path: Path) -> None:
    """Test IoU against dev fraction, one line per model, 95% interval error bars clipped to
    [0, 1] (asymmetric where clipped)."""
    groups = _groups(rows)
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for model in dict.fromkeys(r["model"] for r in rows):
        fractions = sorted(f for m, f in groups if m == model)
        intervals = [
            mean_interval([r["iou"] for r in groups[(model, f)]], bounds=UNIT) for f in fractions
        ]
        means = np.array([i.mean for i in intervals])
        label = groups[(model, fractions[0])][0].get("label") or model
        ax.errorbar(
            fractions, means, yerr=error_bars(intervals), marker="o", capsize=4, label=label
        )
    ax.set_xlabel("development fraction of the dataset")
    ax.set_ylabel("test IoU (dataset-level, 95% t-interval over seeds)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def error_bars(intervals: list[Interval]) -> np.ndarray:
    """2 x n asymmetric ``yerr`` (below, above) for matplotlib; 0 where there is no interval."""
    below = [i.mean - i.low for i in intervals]
    above = [i.high - i.mean for i in intervals]
    return np.nan_to_num(np.array([below, above], dtype=np.float64))


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
