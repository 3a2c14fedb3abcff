import json
import subprocess
import sys

import numpy as np
import pytest

from sslseg.config import load_config
from sslseg.errors import SslsegError
from sslseg.runs import RunDir
from sslseg.seg.finetune import FinetuneConfig, finetune

TINY = ["source=sample", "side=32", "batch_size=16", "dev_fraction=0.5", "figures=2"]


def _config(out, *extra):
    return load_config(FinetuneConfig, None, [*TINY, f"out={out}", *extra])


def test_resumed_run_equals_uninterrupted(tmp_path):
    whole = finetune(_config(tmp_path / "whole", "epochs=3"), progress=False)
    # killed in epoch 3 after its log line, before its checkpoint; then the same command again
    part = tmp_path / "part"
    save = RunDir.save

    def killed(self, name, obj):
        if name == "last.pt" and obj["epoch"] == 3:
            raise KeyboardInterrupt
        save(self, name, obj)

    RunDir.save = killed
    try:
        with pytest.raises(KeyboardInterrupt):
            finetune(_config(part, "epochs=3"), progress=False)
    finally:
        RunDir.save = save
    assert not (part / "results.json").exists()
    resumed = finetune(_config(part, "epochs=3"), progress=False)
    for key in ("iou", "bce", "dice_loss", "best_epoch"):
        assert resumed[key] == pytest.approx(whole[key], rel=1e-5), key
    assert [r["epoch"] for r in RunDir(part).read_log()] == [1, 2, 3]
    for name in (
        "config.yaml",
        "log.jsonl",
        "best.pt",
        "results.json",
        "predictions.png",
        "curves.png",
        "test_per_image.csv",
    ):
        assert (part / name).is_file(), name
    assert set(json.loads((part / "results.json").read_text())) >= {
        "iou",
        "f1",
        "dice_loss",
        "focal_loss",
        "bce",
        "recall",
        "accuracy",
        "precision",
    }


def test_finished_run_is_not_redone_and_config_clash_refused(tmp_path):
    out = tmp_path / "run"
    first = finetune(_config(out, "epochs=1"), progress=False)
    assert finetune(_config(out, "epochs=1"), progress=False) == first
    with pytest.raises(SslsegError, match="another config"):
        finetune(_config(out, "epochs=1", "lr=0.01"), progress=False)


@pytest.mark.parametrize(
    "override,message",
    [
        ("side=100", "side: 100 is not a positive multiple of 32"),
        ("colour=red", "colour"),
        ("epochs=0", "epochs"),
        ("lr=-1", "lr"),
        ("epochs=many", "epochs"),
        ("augment=rotate", "augment"),
    ],
)
def test_bad_config_values_are_one_line(override, message):
    with pytest.raises(SslsegError, match=message):
        load_config(FinetuneConfig, None, [override])


def test_cli_bad_input_exits_cleanly(tmp_path):
    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    out = tmp_path / "never"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sslseg.cli",
            "finetune",
            "source=oxford-pet",
            f"root={empty}",
            f"out={out}",
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "no images found" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_split_file_matches_store_ids(tmp_path):
    finetune(_config(tmp_path / "r", "epochs=1"), progress=False)
    split = json.loads((tmp_path / "r" / "split.json").read_text())
    assert not set(split["test"]) & set(split["train"])
    assert len(split["test"]) == round(0.2 * 81)
    assert np.isfinite(json.loads((tmp_path / "r" / "results.json").read_text())["iou"])
