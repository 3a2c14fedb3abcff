"""docs/results/wall.sh, which the study scripts source to keep their wall time."""

import re
import subprocess
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
