"""sslseg label-curves (Fig. 10): nested label fractions, lines from fixed and pretrained
encoders, U-Net IoU and Mask R-CNN mask AP on one split, paired differences over seeds, and reuse
of exactly what is unchanged."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from sslseg.config import load_config
from sslseg.errors import SslsegError
from sslseg.experiments import downstream as down
from sslseg.experiments.label_curves import (
    CurvePoint,
    LabelCurveConfig,
    paired_differences,
    paired_differences_csv,
    render_report,
    run_label_curves,
)
from sslseg.runs import RunDir

STUDY = [
    "progress=false",
    "fractions=[0.1, 0.25]",
    "seeds=[0, 1]",
    "models=[{name: simclr-sgd, pretrain_source: sample, pretrain: {policy: sgd}}]",
    "pretrain={method: simclr, side: 32, epochs: 1, warmup_epochs: 0, batch_size: 8}",
    "downstream=[unet, maskrcnn]",
    "finetune={source: sample, side: 32, epochs: 1, batch_size: 8, figures: 0, device: cpu}",
    "detect={side: 64, epochs: 1, batch_size: 4, min_area: 8, detections_per_image: 5, "
    "rois_per_image: 16, figures: 0, device: cpu}",
]


def _config(tmp_path, *extra: str) -> LabelCurveConfig:
    return load_config(LabelCurveConfig, None, [f"out={tmp_path / 'lc'}", *STUDY, *extra])


def _rows(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_label_curves_are_nested_and_written(tmp_path):
    config = load_config(
        LabelCurveConfig,
        None,
        [
            f"out={tmp_path / 'lc'}",
            "fractions=[0.5, 1.0]",
            "finetune.side=32",
            "finetune.epochs=1",
            "finetune.figures=0",
            "progress=false",
        ],
    )
    rows = _rows(run_label_curves(config))
    assert [(r["encoder"], r["downstream"]) for r in rows] == [("random", "unet")] * 2
    half, full = (int(r["train_images"]) for r in rows)
    assert half == round(full / 2)
    assert (tmp_path / "lc" / "label_curves.png").is_file()
    assert all(0 <= float(r["average_precision"]) <= 1 for r in rows)


def test_pretrained_lines_and_mask_ap_are_paired_on_one_split(tmp_path, monkeypatch):
    # Mask R-CNN trains for real in one cell (its split is compared with the U-Net's below); the
    # other detection cells return a value of their config, which is all the pairing needs and
    # keeps this test fast
    real_detect, kept = down.trainer("maskrcnn"), down.kept_metrics("maskrcnn")
    real_cell = "simclr-sgd-maskrcnn-train0.25-seed1"

    def detect_one(cfg):
        if cfg.out.endswith(real_cell):
            return real_detect(cfg)
        value = (cfg.seed + 1) * cfg.train_fraction * (2 if "simclr" in cfg.out else 1) / 10
        results = {"train_images": 0, **{k: value for k in kept}}
        RunDir(Path(cfg.out)).write_json("results.json", results)  # finished, as detect's
        return results

    monkeypatch.setitem(down.DOWNSTREAM, "maskrcnn", (detect_one, "mask_ap", kept))
    csv_path = run_label_curves(_config(tmp_path))
    lc = tmp_path / "lc"
    rows = _rows(csv_path)
    # 2 lines x 2 downstream models x 2 fractions x 2 seeds
    assert len(rows) == 16
    for line in ("random", "simclr-sgd"):
        for seed in "01":
            small, large = (
                json.loads((lc / f"cells/{line}-train{f}-seed{seed}/split.json").read_text())
                for f in ("0.1", "0.25")
            )
            assert set(small["train"]) < set(large["train"])  # nested shares
            assert small["test"] == large["test"]
    # a seed's U-Net and Mask R-CNN cells test the same images, the SSL line's from one encoder
    unet = json.loads((lc / "cells/simclr-sgd-train0.25-seed1/split.json").read_text())
    det = json.loads((lc / "cells/simclr-sgd-maskrcnn-train0.25-seed1/split.json").read_text())
    assert unet["test"] == det["test"] and set(det["train"]) == set(unet["train"])
    made = [
        json.loads((lc / f"cells/simclr-sgd{d}-train0.25-seed1/made_by.json").read_text())
        for d in ("", "-maskrcnn")
    ]
    assert made[0]["encoder_hash"] == made[1]["encoder_hash"]
    saved = (lc / "pretrain/simclr-sgd-seed1/config.yaml").read_text()
    assert "policy: sgd" in saved and "seed: 1" in saved
    # each paired delta is the mean over seeds of that metric's per-seed differences
    key = {"iou": "unet", "mask_ap": "maskrcnn"}
    value = {(r["encoder"], r["downstream"], r["train_fraction"], r["seed"]): r for r in rows}
    paired = _rows(lc / "label_curves_paired.csv")
    assert [(p["metric"], p["train_fraction"]) for p in paired] == [
        ("iou", "0.1"),
        ("iou", "0.25"),
        ("mask_ap", "0.1"),
        ("mask_ap", "0.25"),
    ]
    for p in paired:
        model, f = key[p["metric"]], p["train_fraction"]
        per_seed = [
            float(value["simclr-sgd", model, f, s][p["metric"]])
            - float(value["random", model, f, s][p["metric"]])
            for s in "01"
        ]
        assert float(p["delta"]) == pytest.approx(np.mean(per_seed), abs=1e-4)
        assert p["basis"] == "seeds-t" and p["seeds"] == "2"
        assert float(p["family_level"]) == pytest.approx(1 - 0.05 / 4, abs=1e-4)
    report = (lc / "report.md").read_text()  # one table row per paired CSV row
    for p in paired:
        assert (
            f"| simclr-sgd | {p['metric']} | {p['train_fraction']} | {float(p['delta']):+.4f} |"
            in report
        )
        assert float(p["family_low"]) <= float(p["low"]) <= float(p["high"])

    # a rerun trains nothing; a detection key retrains exactly the detection cells
    monkeypatch.undo()
    trained = []

    def counting(model, kept):
        def train(cfg):
            trained.append((model, cfg.out.rsplit("/", 1)[-1]))
            return {"train_images": 1, **{k: 0.5 for k in kept}}

        return train

    for model, (_, metric, kept) in list(down.DOWNSTREAM.items()):
        monkeypatch.setitem(down.DOWNSTREAM, model, (counting(model, kept), metric, kept))
    run_label_curves(_config(tmp_path))
    assert trained == []
    run_label_curves(_config(tmp_path, "detect.lr=0.004"))
    assert sorted(trained) == sorted(
        ("maskrcnn", f"{m}-maskrcnn-train{f}-seed{s}")
        for m in ("random", "simclr-sgd")
        for f in ("0.1", "0.25")
        for s in (0, 1)
    )


def test_one_seed_pairs_the_unet_over_images_and_mask_ap_not_at_all(tmp_path):
    def run(name, tp, fp, fn):
        folder = tmp_path / name
        folder.mkdir()
        lines = ["id,tp,fp,fn,tn,dice_loss,focal_loss,bce"]
        lines += [f"img{i},{a},{b},{c},0,0,0,0" for i, (a, b, c) in enumerate(zip(tp, fp, fn))]
        (folder / "test_per_image.csv").write_text("\n".join(lines) + "\n")
        return folder

    # random: IoU 80 / 100 = 0.8; ssl: 70 / 120; ssl at 0.5 has no random run to pair with
    points = [
        CurvePoint("random", "unet", 1.0, 0, {}, run("r", [50, 30], [10, 0], [0, 10])),
        CurvePoint("ssl", "unet", 1.0, 0, {}, run("s", [40, 30], [20, 10], [10, 10])),
        CurvePoint("ssl", "unet", 0.5, 0, {}, run("s_half", [1, 1], [0, 0], [0, 0])),
        CurvePoint("random", "maskrcnn", 1.0, 0, {"mask_ap": 0.25}, tmp_path / "rd"),
        CurvePoint("ssl", "maskrcnn", 1.0, 0, {"mask_ap": 0.375}, tmp_path / "sd"),
    ]
    lines = paired_differences_csv(paired_differences(points, n_boot=200)).splitlines()
    assert lines[0].startswith("encoder,baseline,metric,train_fraction,seeds,delta,low,high,basis")
    assert len(lines) == 3
    encoder, baseline, metric, fraction, seeds, delta, low, high, basis = lines[1].split(",")[:9]
    assert basis.startswith("images")  # one seed: conditional on that training run
    assert (encoder, baseline, metric, fraction, seeds) == ("ssl", "random", "iou", "1", "1")
    assert float(delta) == pytest.approx(70 / 120 - 0.8, abs=1e-4)
    assert float(low) <= float(delta) <= float(high)
    fields = lines[2].split(",")
    assert fields[2] == "mask_ap" and float(fields[5]) == pytest.approx(0.125)
    assert fields[8] == "none" and fields[6] == "nan"  # AP is no sum over images: no interval


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("downstream=[unet, yolo]", "config: downstream: unknown ['yolo']"),
        ("fractions=[0, 1]", "config: fractions: 0.0 is outside"),
        ("encoders=[simclr-sgd]", "config: models: model names repeat"),
        ("models=[{name: x, pretrain_source: sample, pretrain: {policy: nonsense}}]", "nonsense"),
        pytest.param(
            "detect.device=cuda", "'cuda' asked for but CUDA is not", marks=pytest.mark.no_gpu
        ),
        pytest.param(
            "pretrain.device=cuda", "'cuda' asked for but CUDA is not", marks=pytest.mark.no_gpu
        ),
    ],
)
def test_bad_curves_are_one_line_errors_and_write_nothing(tmp_path, extra, message):
    with pytest.raises(SslsegError, match=message.replace("[", r"\[").replace("]", r"\]")) as err:
        run_label_curves(_config(tmp_path, extra))
    assert "\n" not in str(err.value)
    assert not (tmp_path / "lc").exists()


@pytest.mark.parametrize("name", ["pv01-fig10-cpu", "pv01-fig10-gpu"])
def test_the_committed_pv01_configs_load(name):
    path = Path(__file__).resolve().parents[2] / f"configs/label-curves/{name}.yaml"
    config = load_config(LabelCurveConfig, str(path))
    assert [m.pretrain["policy"] for m in config.models] == ["default", "sgd+default"]
    assert config.encoders == ["random"] and len(config.seeds) >= 3
    assert config.finetune.test_splits == ["val", "test"]


def test_the_report_tables_means_and_paired_differences_by_hand(tmp_path):
    # random IoU 0.5, 0.7 over seeds: mean 0.6, t-interval 0.6 ± 12.706 x 0.1 clipped to [0, 1];
    # ssl 0.62, 0.8: per-seed differences 0.12, 0.10, mean 0.11, sd 0.01414, se 0.01,
    # interval 0.11 ± 12.706 x 0.01 = [-0.0171, +0.2371]; one comparison: family level 0.95
    points = [
        CurvePoint(line, "unet", 0.5, seed, {"iou": iou, "train_images": 40 + seed}, tmp_path)
        for line, ious in (("random", (0.5, 0.7)), ("ssl", (0.62, 0.8)))
        for seed, iou in enumerate(ious)
    ]
    config = load_config(LabelCurveConfig, None, ["seeds=[0, 1]", "fractions=[0.5]"])
    report = render_report(config, points, paired_differences(points))
    assert "| line | 50% (40–41) |" in report
    assert "| random | 0.600 [0.000, 1.000] |" in report
    assert "| ssl | 0.710 [0.000, 1.000] |" in report
    row = "| ssl | iou | 0.5 | +0.1100 | [-0.0171, +0.2371] | [-0.0171, +0.2371] |"
    assert row in report and report.rstrip().endswith("| no significant difference |")
