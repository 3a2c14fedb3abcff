import numpy as np
import pytest

from sslseg.experiments.report import (
    error_bars,
    plot_iou_vs_fraction,
    read_results_csv,
    render_report,
    write_results_csv,
)
from sslseg.experiments.stats import UNIT, mean_interval


def _run(tmp_path, name, seed, quality, fraction=0.2):
    folder = tmp_path / f"{name}-{fraction:g}-{seed}"
    folder.mkdir()
    rng = np.random.default_rng(seed)
    tp = rng.integers(100, 200, 30)
    err = np.round(tp * (1 - quality)).astype(int)
    lines = ["id,tp,fp,fn,tn,dice_loss,focal_loss,bce"]
    lines += [f"img{i},{t},{e},{e},500,0.1,0.1,0.2" for i, (t, e) in enumerate(zip(tp, err))]
    (folder / "test_per_image.csv").write_text("\n".join(lines) + "\n")
    iou = tp.sum() / (tp.sum() + 2 * err.sum())
    return {
        "model": name,
        "label": name,
        "dev_fraction": fraction,
        "seed": seed,
        "iou": iou,
        "f1": 0.8,
        "dice_loss": 0.1,
        "focal_loss": 0.1,
        "bce": 0.2,
        "recall": 0.9,
        "accuracy": 0.9,
        "precision": 0.9,
        "iou_per_image": iou,
        "train_seconds": 1.0,
        "run": str(folder),
    }


def _row_of(text, start):
    return next(line for line in text.splitlines() if line.startswith(start))


def test_report_renders_from_results_csv(tmp_path):
    rows = [_run(tmp_path, "baseline", s, 0.6) for s in range(3)]
    rows += [_run(tmp_path, "simclr", s, 0.9) for s in range(3)]
    write_results_csv(rows, tmp_path / "results.csv")
    back = read_results_csv(tmp_path / "results.csv")
    assert [r["seed"] for r in back] == [0, 1, 2, 0, 1, 2]
    text = render_report(back, n_boot=200)
    assert "| 0 | baseline | BCE | 20 | 3 |" in text
    assert "| 1 | simclr | BCE | 20 | 3 |" in text
    row = _row_of(text, "| simclr | 20 | 3 | t over seeds |")
    assert "| real gain |" in row  # a large gain survives Bonferroni too
    assert "1 comparison:" in text and "1 − 0.05/1" in text
    assert "- simclr at dev 0.2: real gain" in text
    assert "±" in text


def test_report_needs_only_results_csv_with_several_seeds(tmp_path):
    rows = [_run(tmp_path, "baseline", s, 0.6) for s in range(3)]
    rows += [_run(tmp_path, "simclr", s, 0.6) for s in range(3)]
    for i, row in enumerate(rows):  # run folders gone; a small, noisy, non-significant gain
        row["run"] = str(tmp_path / "gone" / str(i))
        if row["model"] == "simclr":
            row["iou"] += (0.01, 0.03, -0.005)[row["seed"]]
    text = render_report(rows, n_boot=200)
    row = _row_of(text, "| simclr | 20 | 3 | t over seeds |")
    assert "| no significant difference |" in row
    mde = float(row.rstrip(" |").rsplit("|", 1)[1])
    assert mde > 0.02  # 3 seeds with this spread cannot see 0.02
    assert "too few seeds" in text and f"smaller than {mde:.3f} IoU" in text


def test_single_seed_comparisons_say_what_they_can(tmp_path):
    rows = [_run(tmp_path, "baseline", 0, 0.6, f) for f in (0.5, 0.2)]
    rows += [_run(tmp_path, "simclr", 0, 0.9, f) for f in (0.5, 0.2)]
    rows[3]["run"] = str(tmp_path / "missing")  # simclr at 0.2 has lost its per-image counts
    text = render_report(rows, n_boot=200)
    assert "conditional on one training run" in _row_of(text, "| simclr | 50 | 1 |")
    assert "- simclr at dev 0.5: real gain, conditional on one training run" in text
    assert "no interval: one seed and no per-image counts" in _row_of(text, "| simclr | 20 | 1 |")
    assert "- simclr at dev 0.2: no interval: one seed and no per-image counts" in text
    assert "1 − 0.05/2" in text


def test_bounded_table_cells_and_error_bars_stay_in_range(tmp_path):
    rows = [_run(tmp_path, "baseline", s, 0.6) for s in range(2)]
    rows[0]["recall"], rows[1]["recall"] = 0.99, 0.80  # t with 1 d.f. crosses 1
    rows[0]["bce"], rows[1]["bce"] = 0.05, 0.9  # and 0
    text = render_report(rows, n_boot=200)
    table = _row_of(text, "| 0 | baseline |")
    assert "0.895 [0.000, 1.000]" in table  # recall
    assert "0.475 [0.000, " in table  # BCE: bounded below only
    intervals = [mean_interval([0.05, 0.9], bounds=UNIT), mean_interval([0.5], bounds=UNIT)]
    below, above = error_bars(intervals)
    assert (below[0], above[0]) == pytest.approx((0.475, 1 - 0.475))  # mean 0.475 in [0, 1]
    assert below[1] == 0 and above[1] == 0  # no interval with one seed
    plot_iou_vs_fraction(rows, tmp_path / "iou.png")
    assert (tmp_path / "iou.png").stat().st_size > 0
