"""docs/results/wall.sh and run_seconds.py, with which the study scripts keep their time."""

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def keep_wall(tmp_path: Path, command: str) -> subprocess.CompletedProcess:
    script = f"set -euo pipefail; source {ROOT}/docs/results/wall.sh; "
    script += f"keep_wall study {tmp_path}/time.txt {command}; echo after"
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True)


def test_keep_wall_writes_one_line_after_the_command(tmp_path):
    done = keep_wall(tmp_path, "echo dropped")
    assert done.returncode == 0
    line = (tmp_path / "time.txt").read_text()
    assert re.fullmatch(r"study wall \d+ s \(\d+ cores, load [\d. ]+ at the end\)\n", line)
    assert done.stdout == line + "after\n"  # the command's own output is dropped


def test_a_failing_command_stops_the_script_and_writes_no_time(tmp_path):
    done = keep_wall(tmp_path, "false")
    assert done.returncode != 0 and "after" not in done.stdout
    assert not (tmp_path / "time.txt").exists()


def test_every_script_that_keeps_a_wall_time_sources_the_helper():
    for script in (ROOT / "docs" / "results").glob("*-run.sh"):
        text = script.read_text()
        if "keep_wall" in text:
            assert "source docs/results/wall.sh" in text, script.name


def test_run_seconds_sums_every_epoch_of_every_run(tmp_path):
    logs = {"pretrain/a": [1.0, 2.0], "pretrain/b": [4.5], "cells/c": [0.25, 0.25, 0.5]}
    for run, seconds in logs.items():
        (tmp_path / run).mkdir(parents=True)
        rows = [json.dumps({"epoch": i + 1, "seconds": s}) for i, s in enumerate(seconds)]
        (tmp_path / run / "log.jsonl").write_text("\n".join(rows) + "\n")
    (tmp_path / "cells/c/cell.json").write_text(json.dumps({"wall_s": 2.5}))
    script = ROOT / "docs" / "results" / "run_seconds.py"
    done = subprocess.run([sys.executable, script, tmp_path], capture_output=True, text=True)
    assert done.returncode == 0
    assert done.stdout.splitlines() == [
        # runs 3 s and 4.5 s: median 3.75; epochs 1, 2, 4.5: median 2
        "pretraining: 2 runs, 8 s of epochs in all, median run 4 s, median epoch 2.0 s",
        "fine-tuning: 1 runs, 1 s of epochs in all, median run 1 s, median epoch 0.2 s",
        "cells: 1 with a wall time, 2 s in all",
    ]
