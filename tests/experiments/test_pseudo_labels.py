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


def test_pseudo_masks_from_another_source_train_the_zero_label_unet_on_those_images_only(
    tmp_path, monkeypatch
):
    import json

    import numpy as np
    from PIL import Image

    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    # another source: 24 sample images the study's limit=30 does not choose, as a plain folder
    base = _config(tmp_path / "x")
    full = pl.open_base_store(base)
    unused = sorted(set(range(len(full))) - set(pl.chosen_rows(full, 30)))
    folder = tmp_path / "other"
    folder.mkdir()
    for row in unused:
        Image.fromarray(np.asarray(full.images[row])).save(folder / f"other{row}.png")
    # the rule keeps every mask here: a 10 % validation share of few images is easily emptied
    extra = ("pseudo_source=image-folder", f"pseudo_root={folder}", "confidence.min_area=0")
    out = tmp_path / "study"
    summary = run_pseudo_labels(_config(out, *extra))
    assert summary["complete"] and summary["cells_run"] == 3

    (data,) = (out / "data").iterdir()  # one seed, one folder
    manifest = json.loads((data / "pseudo" / "pseudo.json").read_text())
    parts = manifest["parts"]
    other_ids = {f"other{r}" for r in unused}
    assert set(parts["train"]["ids"]) | set(parts["val"]["ids"]) <= other_ids
    assert not set(parts["train"]["ids"]) & set(parts["val"]["ids"])
    assert parts["train"]["kind"] == "pseudo" and parts["test"]["kind"] == "real"
    assert parts["train"]["store"] != parts["test"]["store"]
    real = json.loads((data / "real" / "pseudo.json").read_text())["parts"]
    assert parts["test"]["ids"] == real["test"]["ids"]  # every regime tests the same images
    assert not other_ids & set(real["train"]["ids"])
    report = Path(summary["report"]).read_text()
    assert "Pseudo-masks from another source" in report and str(folder) in report

    # the folder key knows the source: the data's own pseudo-masks are written elsewhere
    store = full.subset(pl.chosen_rows(full, 30))
    own = pl.pseudo_labels(store, 1, False)
    other = pl.pseudo_labels(pl.open_pseudo_store(_config(out, *extra)), 1, False)
    assert pl.data_key(base, store, own, 0) != pl.data_key(base, store, other, 0)
    meta = pl.encoder_meta(_config(out, *extra), 0)
    assert meta["data"]["source"] == "image-folder" and "holdout" not in meta


def test_pseudo_root_without_pseudo_source_is_one_line(tmp_path, capsys):
    assert cli.main(["pseudo-label", f"out={tmp_path / 'x'}", "pseudo_root=somewhere"]) == 2
    err = capsys.readouterr().err.strip()
    assert "pseudo_source" in err and "\n" not in err
    assert not (tmp_path / "x").exists()
