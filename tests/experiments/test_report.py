import numpy as np

from sslseg.experiments.report import read_results_csv, render_report, write_results_csv


def _run(tmp_path, name, seed, quality):
    folder = tmp_path / f"{name}-{seed}"
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
        "dev_fraction": 0.2,
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


def test_report_renders_from_results_csv(tmp_path):
    rows = [_run(tmp_path, "baseline", s, 0.6) for s in range(3)]
    rows += [_run(tmp_path, "simclr", s, 0.9) for s in range(3)]
    write_results_csv(rows, tmp_path / "results.csv")
    back = read_results_csv(tmp_path / "results.csv")
    assert [r["seed"] for r in back] == [0, 1, 2, 0, 1, 2]
    text = render_report(back, n_boot=200)
    assert "| 0 | baseline | BCE | 20 | 3 |" in text
    assert "| 1 | simclr | BCE | 20 | 3 |" in text
    assert "| real gain | real gain |" in text  # a large gain survives Bonferroni too
    assert "1 comparison:" in text
    assert "±" in text
