"""Re-render the committed reports' statistics from their committed per-run CSVs.

    .venv/bin/python docs/results/rerender_statistics.py

Writes docs/results/table41-cpu-report.md (from table41-cpu-results.csv) and
docs/results/label-curves-pet64-paired.csv (from label-curves-pet64.csv) with the current
comparison (sslseg.experiments.stats). The runs' folders are not committed: with two or more
seeds the comparison needs only each run's IoU, which the CSVs hold.
"""

from __future__ import annotations

import csv
from pathlib import Path

from sslseg.experiments.label_curves import (
    CurvePoint,
    paired_differences,
    paired_differences_csv,
)
from sslseg.experiments.report import read_results_csv, render_report
from sslseg.runs import atomic_write_text

HERE = Path(__file__).resolve().parent


def main() -> None:
    rows = read_results_csv(HERE / "table41-cpu-results.csv")
    report = render_report(rows, "baseline", 2000, "Experiment runs/table41-cpu-bf16")
    atomic_write_text(HERE / "table41-cpu-report.md", report)
    with open(HERE / "label-curves-pet64.csv", newline="") as fh:
        curves = [
            CurvePoint(
                r["encoder"],
                "unet",
                float(r["train_fraction"]),
                int(r["seed"]),
                {"iou": float(r["iou"])},
                Path("missing"),  # run folders are not committed
            )
            for r in csv.DictReader(fh)
        ]
    atomic_write_text(HERE / "label-curves-pet64-paired.csv", paired_differences_csv(paired_differences(curves)))
    print("wrote table41-cpu-report.md and label-curves-pet64-paired.csv")


if __name__ == "__main__":
    main()
