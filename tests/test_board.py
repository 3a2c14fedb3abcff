"""TensorBoard event files (``tensorboard=true``): scalars per epoch, views, predictions."""

from __future__ import annotations

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from sslseg.board import Board
from sslseg.config import load_config
from sslseg.runs import RunDir
from sslseg.seg.finetune import FinetuneConfig, finetune
from sslseg.ssl.command import PretrainConfig, pretrain_encoder


def _events(folder) -> EventAccumulator:
    events = EventAccumulator(str(folder / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    return events


def test_pretraining_writes_scalars_per_epoch_and_its_first_views(tmp_path):
    cfg = load_config(
        PretrainConfig,
        values={
            "source": "sample",
            "side": 32,
            "epochs": 2,
            "batch_size": 16,
            "out": str(tmp_path / "run"),
            "progress": False,
            "tensorboard": True,
        },
    )
    pretrain_encoder(cfg)
    events = _events(tmp_path / "run")
    loss = events.Scalars("train/loss")
    log = RunDir(tmp_path / "run").read_log()
    assert [e.step for e in loss] == [1, 2]
    assert [e.value for e in loss] == pytest.approx([r["loss"] for r in log], rel=1e-6)
    (views,) = events.Images("views")  # 2 views x 8 images, 32 px, padding 1
    assert (views.width, views.height) == (8 * 33 + 1, 2 * 33 + 1)


def test_finetuning_writes_scalars_and_test_predictions(tmp_path):
    out = tmp_path / "ft"
    cfg = load_config(
        FinetuneConfig,
        values={
            "source": "sample",
            "side": 32,
            "batch_size": 16,
            "dev_fraction": 0.5,
            "epochs": 2,
            "figures": 2,
            "out": str(out),
            "tensorboard": True,
        },
    )
    finetune(cfg, progress=False)
    events = _events(out)
    assert [e.step for e in events.Scalars("train/val_loss")] == [1, 2]
    (grid,) = events.Images("test/image_mask_prediction")  # 2 rows of image | mask | prediction
    assert (grid.width, grid.height) == (3 * 33 + 1, 2 * 33 + 1)


def test_off_writes_nothing(tmp_path):
    board = Board(RunDir(tmp_path).create(), enabled=False)
    board.record({"epoch": 1, "loss": 0.5})
    board.close()
    assert list(tmp_path.iterdir()) == []
