"""The report of ``sslseg pseudo-label``: CSVs, paired intervals over seeds, markdown, PNGs."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sslseg.experiments.report import error_bars  # noqa: E402
from sslseg.experiments.stats import (  # noqa: E402
    UNIT,
    Interval,
    PairedDifference,
    mean_interval,
    paired_iou_difference,
)
from sslseg.runs import atomic_write_text  # noqa: E402
from sslseg.saliency.pseudo import file_name  # noqa: E402

if TYPE_CHECKING:
    from sslseg.data.store import Store
    from sslseg.experiments.pseudo_labels import Cell, PseudoLabelConfig, SeedData
    from sslseg.saliency.pseudo import PseudoLabels

CUT = "saliency-cut"  # the pseudo-masks themselves, scored on the test images (no U-Net)
LABELS = {
    CUT: "SaliencyCut masks (no U-Net)",
    "pseudo-only": "pseudo-only (0 real labels)",
    "pseudo+real": "pseudo-mask pretraining + real labels",
    "random": "random init + real labels",
    "ssl": "SSL encoder + real labels",
}
CSV_FIELDS = [
    "regime",
    "train_fraction",
    "seed",
    "train_images",
    "test_images",
    "iou",
    "average_precision",
    "f1",
    "best_epoch",
    "train_seconds",
    "wall_s",
    "run",
]
TIMING_FIELDS = ("train_seconds", "wall_s")  # differ between otherwise equal runs


# ---------------------------------------------------------------------------- counts


def counts(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """tp, fp, fn of a 0/1 prediction against a 0/1 mask (255 = ignored)."""
    valid = truth != 255
    p, t = (pred > 0) & valid, (truth == 1) & valid
    return {"tp": float((p & t).sum()), "fp": float((p & ~t).sum()), "fn": float((~p & t).sum())}


def pooled_iou(pairs: list[dict[str, float]]) -> float:
    tp, fp, fn = (sum(c[k] for c in pairs) for k in ("tp", "fp", "fn"))
    return tp / max(tp + fp + fn, 1.0)


def read_counts(run: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """A fine-tuning run's test ids and per-image tp/fp/fn, in its test order."""
    with open(Path(run) / "test_per_image.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    per = {k: np.array([float(r[k]) for r in rows]) for k in ("tp", "fp", "fn")}
    return [r["id"] for r in rows], per


def cut_counts(
    store: Store, labels: PseudoLabels, rows: np.ndarray, order: list[str]
) -> dict[str, np.ndarray]:
    """Per-image counts of the SaliencyCut masks on the test ``rows``, in a run's ``order``
    (ids ``test/<name>``), so they pair image by image with that run's counts."""
    by_name = {f"test/{file_name(store.ids[int(r)])}": int(r) for r in rows}
    per = [counts(labels.masks[by_name[i]], np.asarray(store.masks[by_name[i]])) for i in order]
    return {k: np.array([c[k] for c in per]) for k in ("tp", "fp", "fn")}


# ---------------------------------------------------------------------------- rows


def result_rows(
    config: PseudoLabelConfig,
    store: Store,
    labels: PseudoLabels,
    seeds: dict[int, SeedData],
    done: list[tuple[Cell, dict]],
) -> list[dict[str, Any]]:
    """One row per cell, plus the SaliencyCut masks' own score per seed."""
    from sslseg.experiments.grid import cell_wall_s
    from sslseg.experiments.pseudo_labels import ZERO, Cell, cell_folder

    rows = []
    for cell, result in done:
        run = cell_folder(config, cell)
        wall = cell_wall_s(run)
        rows.append(
            {
                "regime": cell.regime,
                "train_fraction": cell.fraction,
                "seed": cell.seed,
                **{k: result.get(k, math.nan) for k in CSV_FIELDS[3:10]},
                "wall_s": wall,
                "run": str(run),
                "compute_precision": result.get("compute_precision", ""),
                "_counts": read_counts(run),
            }
        )
    for seed, data in seeds.items():
        order, _ = read_counts(cell_folder(config, Cell(ZERO, 0.0, seed)))
        per = cut_counts(store, labels, data.split.test, order)
        iou = pooled_iou([{k: per[k][j] for k in per} for j in range(len(order))])
        tp, fp, fn = (per[k].sum() for k in ("tp", "fp", "fn"))
        rows.append(
            {
                "regime": CUT,
                "train_fraction": 0.0,
                "seed": seed,
                "train_images": 0,
                "test_images": len(order),
                "iou": iou,
                "average_precision": math.nan,
                "f1": 2 * tp / max(2 * tp + fp + fn, 1.0),
                "best_epoch": math.nan,
                "train_seconds": 0.0,
                "wall_s": math.nan,
                "run": "",
                "_counts": (order, per),
            }
        )
    return rows


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    lines = [",".join(CSV_FIELDS)]
    for row in rows:
        lines.append(",".join(_csv(row.get(k, "")) for k in CSV_FIELDS))
    atomic_write_text(path, "\n".join(lines) + "\n")


def _csv(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return str(value)


# ---------------------------------------------------------------------------- comparisons


def comparisons(config: PseudoLabelConfig) -> list[tuple[str, float, str, float]]:
    """(model, its fraction, baseline, its fraction): every regime against random init at
    each fraction, pseudo-only against random at each fraction (how many labels the
    pseudo-masks are worth), and pseudo-only against its own pseudo-masks."""
    from sslseg.experiments.pseudo_labels import PRETRAINED, RANDOM, SSL, ZERO

    out = []
    for f in config.fractions:
        out.append((PRETRAINED, f, RANDOM, f))
        if config.encoder:
            out.append((SSL, f, RANDOM, f))
    out += [(ZERO, 0.0, RANDOM, f) for f in config.fractions]
    out.append((ZERO, 0.0, CUT, 0.0))
    return out


def paired_rows(rows: list[dict[str, Any]], config: PseudoLabelConfig) -> list[dict[str, Any]]:
    """Each comparison's paired ΔIoU over the shared seeds at 95 % and at Bonferroni's
    1 - 0.05/m over the m comparisons (t over seeds with >= 2 seeds, else an image bootstrap
    conditional on the one training run: ``experiments.stats``)."""
    index = {(r["regime"], r["train_fraction"], r["seed"]): r for r in rows}
    wanted = comparisons(config)
    family = 1 - 0.05 / max(len(wanted), 1)
    out = []
    for model, mf, base, bf in wanted:
        seeds = [s for s in config.seeds if (model, mf, s) in index and (base, bf, s) in index]
        if not seeds:
            continue
        values = _values(
            [index[(model, mf, s)] for s in seeds], [index[(base, bf, s)] for s in seeds]
        )
        diff = paired_iou_difference(*values, n_boot=config.n_boot)
        strict = paired_iou_difference(*values, n_boot=config.n_boot, level=family)
        out.append(
            {
                "model": model,
                "model_fraction": mf,
                "baseline": base,
                "baseline_fraction": bf,
                "seeds": len(seeds),
                "diff": diff,
                "family_level": family,
                "family": strict,
            }
        )
    return out


def _values(model: list[dict], base: list[dict]) -> tuple[list, list]:
    """Per seed: the run's IoU with >= 2 seeds; per-image counts (image-paired) with one."""
    if len(model) >= 2:
        return [r["iou"] for r in model], [r["iou"] for r in base]
    (m_ids, m), (b_ids, b) = model[0]["_counts"], base[0]["_counts"]
    if m_ids != b_ids:  # cannot happen: every regime of a seed has the same test folder
        return [model[0]["iou"]], [base[0]["iou"]]
    return [m], [b]


def write_paired_csv(paired: list[dict[str, Any]], path: Path) -> None:
    lines = [
        "model,model_fraction,baseline,baseline_fraction,seeds,delta_iou,low,high,basis,"
        "p_value,mde,family_level,family_low,family_high"
    ]
    for p in paired:
        d, s = p["diff"], p["family"]
        lines.append(
            f"{p['model']},{p['model_fraction']:g},{p['baseline']},{p['baseline_fraction']:g},"
            f"{p['seeds']},{d.mean:.4f},{d.low:.4f},{d.high:.4f},{d.basis},{d.p_value:.4g},"
            f"{d.mde:.4f},{p['family_level']:.4g},{s.low:.4f},{s.high:.4f}"
        )
    atomic_write_text(path, "\n".join(lines) + "\n")


# ---------------------------------------------------------------------------- markdown


def fmt(interval: Interval, digits: int = 3) -> str:
    """``mean ± half`` (``mean [low, high]`` when clipping made it asymmetric)."""
    if math.isnan(interval.low):
        return f"{interval.mean:.{digits}f}"
    below, above = interval.mean - interval.low, interval.high - interval.mean
    if abs(below - above) > 1e-9:
        return f"{interval.mean:.{digits}f} [{interval.low:.{digits}f}, {interval.high:.{digits}f}]"
    return f"{interval.mean:.{digits}f} ± {interval.half_width:.{digits}f}"


def verdict(diff: PairedDifference) -> str:
    if diff.basis == "none":
        return "no interval"
    if diff.low > 0:
        return "gain"
    if diff.high < 0:
        return "loss"
    return "no significant difference"


def _cell_stats(rows: list[dict], regime: str, fraction: float, key: str = "iou") -> Interval:
    values = [r[key] for r in rows if r["regime"] == regime and r["train_fraction"] == fraction]
    return mean_interval(values, bounds=UNIT) if values else Interval(math.nan, math.nan, math.nan)


def _mean(rows: list[dict], regime: str, fraction: float, key: str) -> float:
    values = [r[key] for r in rows if r["regime"] == regime and r["train_fraction"] == fraction]
    return float(np.mean(values)) if values else math.nan


def quality_lines(store: Store, labels: PseudoLabels, config: PseudoLabelConfig) -> list[str]:
    """How good the pseudo-masks are against the real masks, all of them and as filtered."""
    per = [counts(labels.masks[i], np.asarray(store.masks[i])) for i in range(len(store))]
    kept = labels.kept(config.confidence)
    dropped = [i for i in range(len(store)) if not kept[i]]
    reasons = [r for r in labels.reasons(config.confidence) if r]
    by_kind = {k: sum(r.startswith(k) for r in reasons) for k in ("area", "contrast")}
    rule = config.confidence
    lines = [
        "## Pseudo-masks against the real masks",
        "",
        f"Confidence rule: area in [{rule.min_area:g}, {rule.max_area:g}], RC contrast ≥ "
        f"{rule.min_contrast:g}. It keeps {int(kept.sum())} of {len(store)} images "
        f"(dropped: {by_kind['area']} by area, {by_kind['contrast']} by contrast); the rule "
        "applies to the pseudo train and validation images, never to the test images.",
        "",
        "| images | count | pooled IoU of the SaliencyCut mask | mean area | mean RC contrast |",
        "|---|---|---|---|---|",
    ]
    for name, idx in (
        ("all", list(range(len(store)))),
        ("kept", list(np.flatnonzero(kept))),
        ("dropped", dropped),
    ):
        if not idx:
            lines.append(f"| {name} | 0 | – | – | – |")
            continue
        lines.append(
            f"| {name} | {len(idx)} | {pooled_iou([per[i] for i in idx]):.4f} | "
            f"{labels.area[idx].mean():.3f} | {labels.contrast[idx].mean():.3f} |"
        )
    return lines + [""]


def iou_table(rows: list[dict], config: PseudoLabelConfig) -> list[str]:
    from sslseg.experiments.pseudo_labels import ZERO, regimes

    names = regimes(config)
    n = len(config.seeds)
    lines = [
        f"## Test IoU (mean and 95 % t-interval over {n} seed{'s' * (n > 1)}, clipped to [0, 1])",
        "",
        "| real labels | train images | " + " | ".join(LABELS[r] for r in names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for f in config.fractions:
        images = _mean(rows, names[0], f, "train_images")
        cells = " | ".join(fmt(_cell_stats(rows, r, f)) for r in names)
        lines.append(f"| {f:g} | {images:.0f} | {cells} |")
    lines += [
        "",
        f"Zero real labels: **{LABELS[ZERO]}** {fmt(_cell_stats(rows, ZERO, 0.0))} "
        f"(trained on {_mean(rows, ZERO, 0.0, 'train_images'):.0f} pseudo-masked images, "
        "model selection on pseudo-masked validation images too); "
        f"the {LABELS[CUT]} themselves score {fmt(_cell_stats(rows, CUT, 0.0))} on the "
        "same test images.",
        "",
    ]
    return lines


def paired_lines(paired: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## Paired differences (same seeds, same test images)",
        "",
        "ΔIoU = model − baseline per seed; interval: Student t over the per-seed differences "
        "(docs/statistics.md); MDE: the smallest |ΔIoU| these seeds detect with 80 % power; "
        "Bonferroni: the interval at 1 − 0.05/m over the m comparisons of this table.",
        "",
        "| model | baseline | seeds | ΔIoU | 95 % interval | p | MDE | Bonferroni interval | "
        "verdict (95 %) | verdict (Bonferroni) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in paired:
        d, s = p["diff"], p["family"]
        model = _at(p["model"], p["model_fraction"])
        base = _at(p["baseline"], p["baseline_fraction"])
        interval = "–" if d.basis == "none" else f"[{d.low:+.4f}, {d.high:+.4f}]"
        family = "–" if s.basis == "none" else f"[{s.low:+.4f}, {s.high:+.4f}]"
        mde = "–" if math.isnan(d.mde) else f"{d.mde:.4f}"
        lines.append(
            f"| {model} | {base} | {p['seeds']} | {d.mean:+.4f} | {interval} | "
            f"{d.p_value:.3g} | {mde} | {family} | {verdict(d)} | {verdict(s)} |"
        )
    if paired and paired[0]["seeds"] == 1:
        lines += ["", "One seed: the intervals resample test images, for that one run only."]
    return lines + [""]


def other_source_lines(labels: PseudoLabels, config: PseudoLabelConfig) -> list[str]:
    """Where the pseudo-masks came from when not from the data's own images."""
    kept = labels.kept(config.confidence)
    source = config.pseudo_source + (f" ({config.pseudo_root})" if config.pseudo_root else "")
    return [
        "## Pseudo-masks from another source",
        "",
        f"The pseudo-only U-Net trained and was selected on the SaliencyCut masks of {source}: "
        f"{len(labels.store)} images"
        + (f" (a seeded choice, pseudo_limit={config.pseudo_limit})" if config.pseudo_limit else "")
        + f", of which the confidence rule keeps {int(kept.sum())} (mean area "
        f"{labels.area[kept].mean() if kept.any() else math.nan:.3f}, mean RC contrast "
        f"{labels.contrast[kept].mean() if kept.any() else math.nan:.3f}); they have no real "
        "masks to score. It saw none of the data's own images. The section below scores the cut "
        "on the data's own images, as a reference.",
        "",
    ]


def _at(regime: str, fraction: float) -> str:
    return regime if regime in ("pseudo-only", CUT) else f"{regime} @ {fraction:g}"


def budget_lines(
    config: PseudoLabelConfig,
    store: Store,
    seeds: dict[int, SeedData],
    rows: list[dict],
    timing: dict[str, float],
) -> list[str]:
    from sslseg.experiments.pseudo_labels import ZERO

    ft = config.finetune
    data = next(iter(seeds.values())).split
    precision = sorted({str(r.get("compute_precision", "")) for r in rows} - {""})
    walls = {}
    for r in rows:
        if r["regime"] != CUT:
            walls.setdefault(r["regime"], []).append(r["wall_s"])
    wall_text = ", ".join(f"{k} {np.nansum(v):.0f} s ({len(v)} runs)" for k, v in walls.items())
    total = sum(np.nansum(v) for v in walls.values())
    source = ft.source if not ft.root else f"{ft.source} ({ft.root})"
    lines = [
        "## Budget",
        "",
        f"- data: {source}, {len(store)} images"
        + (f" (a seeded choice, limit={config.limit})" if config.limit else "")
        + f", {ft.side} px ({ft.resize}); per seed {len(data.train)} train / {len(data.val)} "
        f"validation / {len(data.test)} test images (dev_fraction {ft.dev_fraction:g}, "
        f"test_fraction {ft.test_fraction:g})",
        f"- training: U-Net {ft.arch}, {ft.epochs} epochs with real labels, "
        f"{config.pseudo_epochs or ft.epochs} on pseudo-masks, batch {ft.batch_size}, lr "
        f"{ft.lr:g}, augment {ft.augment}, precision {ft.precision}"
        + (f" (computed in {', '.join(precision)})" if precision else "")
        + "; pseudo+real starts from the pseudo-only U-Net's "
        + ("whole U-Net (carry=unet)" if config.carry == "unet" else "encoder (carry=encoder)"),
        f"- seeds {list(config.seeds)}, real-label fractions {list(config.fractions)}; "
        f"pseudo-masked train images per seed: "
        + ", ".join(f"{s}: {_seed_mean(rows, ZERO, s, 'train_images')}" for s in config.seeds),
        f"- wall time of the runs: {total:.0f} s ({wall_text}); saliency cache, stores and "
        f"data folders: {timing['fill_and_data_s']:.0f} s in this invocation; this "
        f"invocation in all: {timing['total_s']:.0f} s (finished runs are reused, not timed "
        "again)",
        "",
    ]
    return lines


def _seed_mean(rows: list[dict], regime: str, seed: int, key: str) -> str:
    values = [r[key] for r in rows if r["regime"] == regime and r["seed"] == seed]
    return f"{values[0]:.0f}" if values else "–"


# ---------------------------------------------------------------------------- figures


def plot_curve(rows: list[dict], config: PseudoLabelConfig, path: Path) -> None:
    """Test IoU against the fraction of real labels, one line per regime; the zero-label
    U-Net and the pseudo-masks themselves as horizontal references."""
    from sslseg.experiments.pseudo_labels import ZERO, regimes

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    fractions = sorted(config.fractions)
    for regime in regimes(config):
        stats = [_cell_stats(rows, regime, f) for f in fractions]
        ax.errorbar(
            fractions,
            [s.mean for s in stats],
            yerr=error_bars(stats),
            marker="o",
            capsize=3,
            label=LABELS[regime],
        )
    for regime, style in ((ZERO, "--"), (CUT, ":")):
        s = _cell_stats(rows, regime, 0.0)
        colour = "grey" if regime == CUT else "black"
        ax.axhline(s.mean, linestyle=style, color=colour, label=LABELS[regime])
        # its interval at x = 0 (zero real labels), where a band would hide the other lines
        ax.errorbar([0.0], [s.mean], yerr=error_bars([s]), color=colour, marker="s", capsize=3)
    ax.set_xlabel("fraction of the real training labels")
    ax.set_ylabel("test IoU (mean, 95 % t-interval over seeds)")
    ax.set_xlim(-0.03, 1.05)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_examples(
    config: PseudoLabelConfig,
    store: Store,
    labels: PseudoLabels,
    seeds: dict[int, SeedData],
    path: Path,
) -> None:
    """The first seed's first test images: image, real mask, SaliencyCut mask, and the
    prediction of every regime (the smallest fraction for those with real labels)."""
    from sslseg.experiments.pseudo_labels import ZERO, Cell, cell_folder, regimes

    seed, f = config.seeds[0], min(config.fractions)
    cells = [Cell(ZERO, 0.0, seed)] + [Cell(r, f, seed) for r in regimes(config)]
    saved = [np.load(cell_folder(config, c) / "test_predictions.npz") for c in cells]
    ids = [str(i) for i in saved[0]["ids"][: config.figures]]
    by_name = {f"test/{file_name(store.ids[int(r)])}": int(r) for r in seeds[seed].split.test}
    titles = ["image", "ground truth", "SaliencyCut mask"]
    titles += [_at(c.regime, c.fraction) for c in cells]
    fig, axes = plt.subplots(
        len(ids), len(titles), figsize=(1.6 * len(titles), 1.7 * len(ids)), squeeze=False
    )
    for j, item in enumerate(ids):
        row = by_name[item]
        panels = [store.images[row], store.masks[row], labels.masks[row]]
        for s in saved:
            probs = dict(zip([str(i) for i in s["ids"]], s["probs"], strict=True))
            panels.append(probs[item] > 127)
        for k, (ax, data) in enumerate(zip(axes[j], panels, strict=True)):
            ax.imshow(data, cmap=None if k == 0 else "gray", vmin=0, vmax=1)
            ax.set_axis_off()
            if j == 0:
                ax.set_title(titles[k], fontsize=7)
    fig.suptitle(f"seed {seed}; real-label runs at fraction {f:g}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------------------- all of it


def write_report(
    config: PseudoLabelConfig,
    store: Store,
    labels: PseudoLabels,
    seeds: dict[int, SeedData],
    done: list[tuple[Cell, dict]],
    timing: dict[str, float],
    train_labels: PseudoLabels | None = None,
) -> dict[str, Any]:
    """``labels`` are the SaliencyCut masks of ``store``; ``train_labels`` those the pseudo-only
    U-Net trained on when they come from another source (``pseudo_source``).

    Write ``pseudo_labels.csv``, ``pseudo_labels_paired.csv``, ``report.md`` and the two
    PNGs into the study's folder; returns their paths and the headline IoUs."""
    from sslseg.experiments.pseudo_labels import ZERO

    out = Path(config.out)
    rows = result_rows(config, store, labels, seeds, done)
    paired = paired_rows(rows, config)
    paths = {
        "csv": out / "pseudo_labels.csv",
        "paired_csv": out / "pseudo_labels_paired.csv",
        "curve_png": out / "iou_vs_label_fraction.png",
        "examples_png": out / "examples.png",
        "report": out / "report.md",
    }
    write_csv(rows, paths["csv"])
    write_paired_csv(paired, paths["paired_csv"])
    plot_curve(rows, config, paths["curve_png"])
    if config.figures:
        plot_examples(config, store, labels, seeds, paths["examples_png"])
    lines = [f"# Segmentation from saliency pseudo-masks: {out}", ""]
    lines += budget_lines(config, store, seeds, rows, timing)
    if train_labels is not None and train_labels.store is not store:
        lines += other_source_lines(train_labels, config)
    lines += quality_lines(store, labels, config)
    lines += iou_table(rows, config)
    lines += paired_lines(paired)
    lines += [
        f"Files: `{paths['csv'].name}` (every run), `{paths['paired_csv'].name}`, "
        f"`{paths['curve_png'].name}`"
        + (f", `{paths['examples_png'].name}`" if config.figures else "")
        + ".",
        "",
    ]
    atomic_write_text(paths["report"], "\n".join(lines))
    summary: dict[str, Any] = {k: str(v) for k, v in paths.items()}
    summary["zero_label_iou"] = _cell_stats(rows, ZERO, 0.0).mean
    summary["saliency_cut_iou"] = _cell_stats(rows, CUT, 0.0).mean
    return summary
