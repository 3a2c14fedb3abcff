"""``detect``: a run on the embedded sample, resume after a kill equals an uninterrupted run."""

import json

import pytest
import torch

from sslseg.det import train as det
from sslseg.det.train import DetectConfig, detect
from sslseg.errors import SslsegError


def _config(out, **kw):
    base = dict(
        source="sample",
        side=64,
        epochs=2,
        batch_size=4,
        train_fraction=0.1,
        dev_fraction=0.6,
        min_area=8,
        # an untrained model fills every slot: the mask head's cost is per detection
        detections_per_image=10,
        rois_per_image=64,
        out=str(out),
        progress=False,
        figures=2,
        device="cpu",
    )
    return DetectConfig(**{**base, **kw})


def test_resume_after_a_kill_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    whole = detect(_config(tmp_path / "a"))
    for key in ("mask_ap", "box_ap50", "union_iou"):
        assert -1 <= whole[key] <= 1
    assert (tmp_path / "a" / "instances.png").is_file()
    assert len((tmp_path / "a" / "log.jsonl").read_text().splitlines()) == 2

    calls = {"n": 0}
    real = det.score

    def killed_in_epoch_two(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(det, "score", killed_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        detect(_config(tmp_path / "b"))
    assert torch.load(tmp_path / "b" / "last.pt", weights_only=False)["epoch"] == 1
    monkeypatch.setattr(det, "score", real)
    resumed = detect(_config(tmp_path / "b"))
    assert not (tmp_path / "a" / "last.pt").exists() and not (tmp_path / "b" / "last.pt").exists()
    a = torch.load(tmp_path / "a" / "best.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "b" / "best.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert {k: v for k, v in resumed.items() if k != "train_seconds"} == {
        k: v for k, v in whole.items() if k != "train_seconds"
    }
    # a finished run with another config is refused, not overwritten
    with pytest.raises(SslsegError, match="another config"):
        detect(_config(tmp_path / "a", lr=0.001))
    assert json.loads((tmp_path / "a" / "results.json").read_text()) == whole


def test_validation_keeps_fewer_detections_than_the_test(tmp_path, monkeypatch):
    seen = []
    real = det.predict

    def recording(model, *args, **kwargs):
        preds = real(model, *args, **kwargs)
        seen.append((model.roi_heads.detections_per_img, max(len(p["scores"]) for p in preds)))
        return preds

    monkeypatch.setattr(det, "predict", recording)
    results = detect(_config(tmp_path / "a", epochs=1, val_detections_per_image=3))
    (val_cap, val_most), (test_cap, test_most) = seen  # one validation, then the test
    assert (val_cap, test_cap) == (3, 10)
    assert val_most <= 3 < test_most <= 10  # an untrained model fills every slot it has
    log = json.loads((tmp_path / "a" / "log.jsonl").read_text())
    assert log["compute_precision"] == results["compute_precision"] in ("fp32", "bf16")


def test_bad_input_is_one_line_and_leaves_no_run(tmp_path):
    with pytest.raises(SslsegError, match="instances: 'boxes' is not one of"):
        _config(tmp_path / "x", instances="boxes")
    with pytest.raises(SslsegError, match="precision: 'fp16' is not one of"):
        _config(tmp_path / "x", precision="fp16")
    with pytest.raises(SslsegError, match="val_detections_per_image"):
        _config(tmp_path / "x", val_detections_per_image=0)
    with pytest.raises(SslsegError, match="has no masks"):
        detect(_config(tmp_path / "x", source="image-folder", root=str(tmp_path)))
    assert not (tmp_path / "x").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has the GPU asked for")
def test_a_missing_gpu_is_one_line_before_the_data_or_the_run(tmp_path, monkeypatch):
    monkeypatch.setattr(det, "load_detection_data", lambda *a: pytest.fail("data read first"))
    with pytest.raises(SslsegError, match="device: 'cuda' asked for but CUDA is not available"):
        detect(_config(tmp_path / "x", device="cuda"))
    assert not (tmp_path / "x").exists()


def test_committed_configs_load(tmp_path):
    from pathlib import Path

    from sslseg.config import load_config

    folder = Path(__file__).resolve().parents[2] / "configs" / "detect"
    files = sorted(folder.glob("*.yaml"))
    assert files
    for path in files:
        config = load_config(DetectConfig, path)
        assert config.source == "seg-folder" and config.side % 32 == 0


def test_cli_bad_key_is_one_line(capsys):
    from sslseg.cli import main

    assert main(["detect", "epochs=0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "epochs" in err
