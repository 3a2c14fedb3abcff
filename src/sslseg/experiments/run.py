"""Run a grid end to end: cells, ``results.csv``, ``report.md`` and the figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sslseg.experiments.grid import ExperimentConfig, cell_folder, check_study, run_grid
from sslseg.experiments.report import (
    plot_figure41,
    plot_iou_vs_fraction,
    render_report,
    write_results_csv,
)
from sslseg.runs import RunDir, atomic_write_text
from sslseg.seg.finetune import open_finetune_store


def run_experiment(config: ExperimentConfig) -> Path:
    """Run or resume every cell, then write the report; returns the report's path."""
    # before anything is written
    check_study(config, config.models, config.seeds, [config.finetune.device])
    out = RunDir(Path(config.out)).create()
    out.write_config(config)
    done = run_grid(config)
    rows = [
        {
            "model": cell.model.name,
            "label": cell.model.label or cell.model.name,
            "dev_fraction": cell.dev_fraction,
            "seed": cell.seed,
            **{k: v for k, v in results.items() if isinstance(v, int | float)},
            "run": str(cell_folder(config, cell)),
        }
        for cell, results in done
    ]
    write_results_csv(rows, out.path("results.csv"))
    baseline = config.models[0].name
    atomic_write_text(
        out.path("report.md"),
        render_report(rows, baseline, config.n_boot, f"Experiment {out.root}"),
    )
    plot_iou_vs_fraction(rows, out.path("iou_vs_dev_fraction.png"))
    _figure41(config, done, out.path(f"figure41_dev{config.figure_fraction:g}.png"))
    return out.path("report.md")


def _figure41(config: ExperimentConfig, done: list, path: Path) -> None:
    """Each model's predictions on the same test images at one dev fraction (first seed)."""
    chosen = [
        (cell, r)
        for cell, r in done
        if cell.seed == config.seeds[0] and abs(cell.dev_fraction - config.figure_fraction) < 1e-9
    ]
    if not chosen:
        return
    store = open_finetune_store(config.finetune, progress=False)
    index = {item_id: i for i, item_id in enumerate(store.ids)}
    panels = []
    for cell, _ in chosen:
        saved = np.load(cell_folder(config, cell) / "test_predictions.npz")
        rows = [index[i] for i in saved["ids"][:4]]
        panels.append(
            (
                cell.model.label or cell.model.name,
                store.images[rows],
                store.masks[rows],
                saved["probs"][:4],
            )
        )
    plot_figure41(panels, path)
