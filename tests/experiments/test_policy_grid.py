"""sslseg policy-grid (Fig. 9): methods x policies pretrained per seed, each encoder trained
downstream (U-Net and Mask R-CNN) on the same split, paired differences to random init over
seeds, and reuse of exactly what is unchanged."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from sslseg.config import load_config
from sslseg.errors import SslsegError
from sslseg.experiments import downstream as down
from sslseg.experiments.policy_grid import PolicyGridConfig, run_policy_grid

KEYS = [
    "progress=false",
    "methods=[simclr]",
    "policies=[sgd]",
    "seeds=[0, 1]",
    "pretrain_source=sample",
    "pretrain={side: 32, epochs: 1, warmup_epochs: 0, batch_size: 8}",
    "finetune={source: sample, side: 32, epochs: 1, batch_size: 8, figures: 0, device: cpu}",
    "detect={side: 64, epochs: 1, batch_size: 4, train_fraction: 0.1, min_area: 8, "
    "detections_per_image: 5, rois_per_image: 16, figures: 0, device: cpu}",
]


def _config(tmp_path, *extra: str) -> PolicyGridConfig:
    return load_config(PolicyGridConfig, None, [f"out={tmp_path / 'grid'}", *KEYS, *extra])


def _rows(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_the_grid_pairs_seeds_per_metric_and_reuses_what_is_unchanged(tmp_path, monkeypatch):
    report = run_policy_grid(_config(tmp_path))
    grid = tmp_path / "grid"
    rows = _rows(grid / "results.csv")
    # (random + 1 policy) x 2 seeds x 2 downstream models
    assert len(rows) == 8
    assert {(r["model"], r["downstream"]) for r in rows} >= {
        ("random", "unet"),
        ("simclr-sgd", "maskrcnn"),
    }
    value = {
        (r["model"], r["downstream"], r["seed"]): float(r["iou"] or r["mask_ap"]) for r in rows
    }
    paired = _rows(grid / "paired.csv")
    assert [(p["policy"], p["metric"]) for p in paired] == [("sgd", "iou"), ("sgd", "mask_ap")]
    for p in paired:
        model = "unet" if p["metric"] == "iou" else "maskrcnn"
        name = f"simclr-{p['policy']}"
        per_seed = [value[name, model, s] - value["random", model, s] for s in "01"]
        assert float(p["delta"]) == pytest.approx(np.mean(per_seed), abs=1e-4)
        assert p["basis"] == "seeds-t" and p["seeds"] == "2"
        assert float(p["family_level"]) == pytest.approx(1 - 0.05 / 2, abs=1e-4)
        assert float(p["family_low"]) <= float(p["low"]) <= float(p["high"])
        assert float(p["high"]) <= float(p["family_high"])
    # both downstream models of a seed train on one split, from one encoder
    det = json.loads((grid / "cells/simclr-sgd-maskrcnn-seed1/split.json").read_text())
    unet = json.loads((grid / "cells/simclr-sgd-unet-seed1/split.json").read_text())
    assert det["test"] == unet["test"]
    made = [
        json.loads((grid / f"cells/simclr-sgd-{d}-seed1/made_by.json").read_text())
        for d in ("unet", "maskrcnn")
    ]
    assert made[0]["encoder_hash"] == made[1]["encoder_hash"]
    saved = (grid / "pretrain/simclr-sgd-seed1/config.yaml").read_text()
    assert "policy: sgd" in saved and "seed: 1" in saved
    text = report.read_text()
    assert "| simclr | sgd | mask_ap |" in text and "Bonferroni" in text
    assert Image.open(grid / "heatmap.png").size[0] > 300

    # a rerun trains nothing; a detection key retrains exactly the detection cells
    trained = []

    def counting(downstream, kept):
        def train(cfg):
            trained.append((downstream, cfg.out.rsplit("/", 1)[-1]))
            return {k: 0.5 for k in kept}

        return train

    for downstream, (_, metric, kept) in list(down.DOWNSTREAM.items()):
        monkeypatch.setitem(down.DOWNSTREAM, downstream, (counting(downstream, kept), metric, kept))
    run_policy_grid(_config(tmp_path))
    assert trained == []
    run_policy_grid(_config(tmp_path, "detect.lr=0.004"))
    assert sorted(trained) == [
        ("maskrcnn", f"{m}-maskrcnn-seed{s}") for m in ("random", "simclr-sgd") for s in (0, 1)
    ]
    assert "| random |" in (grid / "report.md").read_text()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("methods=[simclr, dino]", "config: methods: unknown ['dino']"),
        ("downstream=[unet, yolo]", "config: downstream: unknown ['yolo']"),
        ("policies=[default, default]", "config: policies: repeats a name"),
        ("policies=[nonsense]", "nonsense"),
        pytest.param(
            "finetune.device=cuda", "'cuda' asked for but CUDA is not", marks=pytest.mark.no_gpu
        ),
    ],
)
def test_bad_grids_are_one_line_errors_and_write_nothing(tmp_path, extra, message):
    with pytest.raises(SslsegError, match=message.replace("[", r"\[").replace("]", r"\]")) as err:
        run_policy_grid(_config(tmp_path, extra))
    assert "\n" not in str(err.value)
    assert not (tmp_path / "grid").exists()
