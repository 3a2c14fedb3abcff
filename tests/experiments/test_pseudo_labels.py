"""``sslseg pseudo-label``: a run stopped early and one killed inside a cell both resume to
what an uninterrupted run gives; bad keys and values are one line."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from sslseg import cli
from sslseg.config import load_config
from sslseg.errors import SslsegError
from sslseg.experiments import pseudo_labels as pl
from sslseg.experiments.pseudo_labels import PseudoLabelConfig, run_pseudo_labels
from sslseg.experiments.pseudo_report import TIMING_FIELDS
from sslseg.runs import RunDir

TINY = [
    "finetune.source=sample",
    "finetune.side=32",
    "finetune.epochs=1",
    "finetune.figures=2",
    "limit=30",
    "finetune.batch_size=32",  # one batch: a last batch of 1 image fails BatchNorm at 32 px
    "fractions=[1.0]",
    "seeds=[0]",
    "workers=1",
    "figures=2",
    "n_boot=200",
    "confidence.min_area=0.02",
    "progress=false",
]


def _config(out: Path, *extra: str) -> PseudoLabelConfig:
    return load_config(PseudoLabelConfig, None, [*TINY, f"out={out}", *extra])


def _rows(path: Path) -> list[dict[str, str]]:
    """A results CSV without its timing columns (they differ between equal runs) and run
    folders (they name the study's folder)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [{k: v for k, v in r.items() if k not in (*TIMING_FIELDS, "run")} for r in rows]


def test_stopped_and_killed_runs_resume_to_the_uninterrupted_result(tmp_path, monkeypatch):
    # finetune trains on os.cpu_count() threads; on a shared 2-core machine one thread is
    # several times faster, and every run here uses the same count, so results still agree
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    whole = run_pseudo_labels(_config(tmp_path / "whole"))
    assert whole["complete"] and whole["cells_run"] == 3
    assert [r["regime"] for r in _rows(Path(whole["csv"]))] == [
        "pseudo-only",
        "random",
        "pseudo+real",
        "saliency-cut",
    ]

    part = tmp_path / "part"
    first = run_pseudo_labels(_config(part, "max_cells=1"))
    assert first == {"complete": False, "cells_run": 1, "cells": 1}
    done = part / "cells" / "pseudo-only-seed0" / "results.json"
    stamp = done.stat().st_mtime_ns

    # killed inside the next cell: after its first epoch's log line, before its checkpoint
    save = RunDir.save

    def killed(self, name, obj):
        if name == "last.pt":
            raise KeyboardInterrupt
        save(self, name, obj)

    monkeypatch.setattr(RunDir, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        run_pseudo_labels(_config(part))
    monkeypatch.setattr(RunDir, "save", save)
    assert not (part / "cells" / "random-train1-seed0" / "results.json").exists()

    resumed = run_pseudo_labels(_config(part))
    assert resumed["complete"] and resumed["cells_run"] == 2  # the killed cell and the last
    assert done.stat().st_mtime_ns == stamp  # the finished cell was reused, not rerun
    assert _rows(Path(resumed["csv"])) == _rows(Path(whole["csv"]))
    assert _rows(Path(resumed["paired_csv"])) == _rows(Path(whole["paired_csv"]))
    for key in ("report", "curve_png", "examples_png"):
        assert Path(resumed[key]).is_file(), key
    assert "pseudo-only" in Path(resumed["report"]).read_text()

    again = run_pseudo_labels(_config(part))
    assert again["cells_run"] == 0
    assert again["zero_label_iou"] == pytest.approx(whole["zero_label_iou"])


def test_another_confidence_rule_writes_other_data(tmp_path):
    config = _config(tmp_path)
    store = pl.open_base_store(config).subset(pl.chosen_rows(pl.open_base_store(config), 30))
    labels = pl.pseudo_labels(store, 1, False)
    stricter = _config(tmp_path, "confidence.min_area=0.1")
    assert pl.data_key(config, store, labels, 0) != pl.data_key(stricter, store, labels, 0)
    assert pl.data_key(config, store, labels, 0) != pl.data_key(config, store, labels, 1)


def test_an_encoder_that_saw_the_test_images_is_refused_before_anything_is_written(tmp_path):
    from sslseg.backbones import build_resnet, save_encoder

    encoder = tmp_path / "enc" / "encoder.pt"
    meta = {"arch": "resnet18", "stem": "imagenet", "data": {"source": "sample", "root": ""}}
    save_encoder(build_resnet("resnet18"), encoder, meta)  # pretrained on every sample image
    with pytest.raises(SslsegError, match="test images"):
        run_pseudo_labels(_config(tmp_path / "run", f"encoder={encoder}"))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("argument", "key"),
    [
        ("nope=1", "nope"),
        ("confidence.min_area=2", "confidence.min_area"),
        ("fractions=[0]", "fractions"),
        ("finetune.border=ignore", "finetune.border"),
        ("finetune.side=48", "side"),
        ("carry=decoder", "carry"),
        ("finetune.init=runs/x/best.pt", "finetune.init"),
        ("carry=encoder finetune.arch=convnext_atto", "finetune.arch"),
    ],
)
def test_bad_config_is_one_line(tmp_path, capsys, argument, key):
    assert cli.main(["pseudo-label", f"out={tmp_path / 'x'}", *argument.split()]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sslseg: error: ") and key in err
    assert "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_pseudo_real_starts_from_the_whole_pseudo_unet_and_reruns_when_its_start_changes(
    tmp_path, monkeypatch
):
    import torch
    import yaml

    from sslseg.eval.features import file_hash

    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    out = tmp_path / "study"
    assert run_pseudo_labels(_config(out))["cells_run"] == 3
    cells = out / "cells"
    best = cells / "pseudo-only-seed0" / "best.pt"
    pseudo_real = cells / "pseudo+real-train1-seed0"
    saved = yaml.safe_load((pseudo_real / "config.yaml").read_text())
    assert (saved["init"], saved["encoder"]) == (str(best), "random")
    made = (pseudo_real / "made_by.json").read_text()
    assert file_hash(best) in made
    random_start = yaml.safe_load((cells / "random-train1-seed0" / "config.yaml").read_text())
    assert (random_start["init"], random_start["encoder"]) == ("", "random")

    # the pseudo-only U-Net changed behind the same path: only pseudo+real is trained again
    state = torch.load(best, weights_only=True)
    state["model"] = {
        k: v + 1e-3 if v.is_floating_point() else v for k, v in state["model"].items()
    }
    torch.save(state, best)
    assert run_pseudo_labels(_config(out))["cells_run"] == 1

    # carry=encoder: its start is the exported encoder, and the decoder is random again
    assert run_pseudo_labels(_config(out, "carry=encoder"))["cells_run"] == 1
    saved = yaml.safe_load((pseudo_real / "config.yaml").read_text())
    assert saved["init"] == "" and saved["encoder"] == str(out / "encoders" / "pseudo-seed0.pt")
