"""Every figure in the README's results table is in the committed file its row names."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NUMBER = re.compile(r"(?<![\w.])[−+-]?\d+\.\d+")  # decimals: the figures that were measured


def results_rows() -> list[tuple[str, str]]:
    """(figure cell, source cell) of each row of the README's "Measured" table."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Measured", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] not in ("what", "---"):
            rows.append((cells[1], cells[3]))
    return rows


def test_the_results_table_has_rows():
    assert len(results_rows()) >= 5


def test_every_figure_appears_in_its_committed_results_file():
    for figure, source in results_rows():
        files = re.findall(r"docs/results/[\w./-]+", source)
        assert files, f"no docs/results file named for: {figure}"
        text = ""
        for name in files:
            assert (ROOT / name).is_file(), name
            text += (ROOT / name).read_text()
        committed = [float(n) for n in NUMBER.findall(text.replace("−", "-"))]
        for number in NUMBER.findall(figure):
            value = float(number.replace("−", "-"))
            digits = len(number.split(".")[1])
            # the figure as committed, or the committed value rounded to the figure's digits
            assert any(abs(c - value) < 0.5 * 10**-digits + 1e-12 for c in committed), (
                f"{number} ({figure[:60]}…) is not in {files}"
            )
