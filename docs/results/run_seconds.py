"""Sum the epoch seconds of a study's runs, from each run's own log.jsonl.

A study script's wall line covers its last invocation only; a study resumed after a kill
(or one that reuses finished pretrainings) took longer than that. Each run logs every epoch's
seconds, so the sums here count every epoch once, whichever invocation trained it; what they
leave out is the time between epochs (validation of detectors, data decoding, tests). The cells
of a study also keep their wall time (`cell.json`, validation and test included, of the
invocation that finished the cell), summed on a line of its own.

    python docs/results/run_seconds.py RUN_FOLDER >> TIME_FILE
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

STAGES = (("pretraining", "pretrain/*/log.jsonl"), ("fine-tuning", "cells/*/log.jsonl"))


def stage_line(stage: str, logs: list[Path]) -> str:
    """One line: how many runs, their epoch seconds in all, the median run and epoch."""
    runs = [[json.loads(row)["seconds"] for row in p.read_text().splitlines()] for p in logs]
    epochs = [s for run in runs for s in run]
    return (
        f"{stage}: {len(runs)} runs, {sum(epochs):.0f} s of epochs in all, "
        f"median run {statistics.median(sum(r) for r in runs):.0f} s, "
        f"median epoch {statistics.median(epochs):.1f} s"
    )


def wall_line(cells: list[Path]) -> str:
    """One line: the cells' recorded wall seconds in all."""
    walls = [json.loads(p.read_text())["wall_s"] for p in cells]
    return f"cells: {len(walls)} with a wall time, {sum(walls):.0f} s in all"


def main(out: Path) -> None:
    for stage, pattern in STAGES:
        logs = sorted(out.glob(pattern))
        if logs:
            print(stage_line(stage, logs))
    cells = sorted(out.glob("cells/*/cell.json"))
    if cells:
        print(wall_line(cells))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
