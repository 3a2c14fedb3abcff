"""``FinetuneConfig.init``: the whole U-Net starts from a previous run's checkpoint; a resumed
run restores its own; a bad start is one line naming ``init`` and the file, before anything
is written."""

from __future__ import annotations

import shutil

import pytest
import torch
import yaml

from sslseg import cli
from sslseg.config import load_config
from sslseg.errors import SslsegError
from sslseg.runs import RunDir
from sslseg.seg import finetune as finetune_module
from sslseg.seg.finetune import FinetuneConfig, finetune

TINY = ["source=sample", "side=32", "batch_size=16", "dev_fraction=0.5", "figures=2"]


def _config(out, *extra):
    return load_config(FinetuneConfig, None, [*TINY, f"out={out}", *extra])


@pytest.fixture(scope="module")
def previous(tmp_path_factory):
    """A finished one-epoch run (seed 0) to start from."""
    out = tmp_path_factory.mktemp("init") / "previous"
    finetune(_config(out, "epochs=1"), progress=False)
    return out


def _stopped(out, kill_epoch, *extra):
    """A run of ``extra`` killed as it saves epoch ``kill_epoch``'s last.pt."""
    save = RunDir.save

    def killed(self, name, obj):
        if name == "last.pt" and obj["epoch"] == kill_epoch:
            raise KeyboardInterrupt
        save(self, name, obj)

    RunDir.save = killed
    try:
        with pytest.raises(KeyboardInterrupt):
            finetune(_config(out, *extra), progress=False)
    finally:
        RunDir.save = save
    return out


def _weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)


@pytest.fixture
def started(monkeypatch):
    """The U-Net's state_dict as ``_train`` receives it: before the first optimiser step."""
    states = []

    def capture(config, store, split, model, *rest):
        states.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return {}

    monkeypatch.setattr(finetune_module, "_train", capture)
    return states


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    """A two-epoch run killed in epoch 2: its last.pt holds epoch 1."""
    return _stopped(tmp_path_factory.mktemp("init") / "stopped", 2, "epochs=2")


def test_init_starts_from_exactly_the_checkpoint(tmp_path, previous, stopped, started):
    assert not (previous / "last.pt").exists()  # a finished run keeps no resume point
    best, last = _weights(previous / "best.pt"), _weights(stopped / "last.pt")
    finetune(_config(tmp_path / "plain", "epochs=1"), progress=False)
    finetune(_config(tmp_path / "file", "epochs=1", f"init={previous / 'best.pt'}"), False)
    finetune(_config(tmp_path / "folder", "epochs=1", f"init={previous}"), False)  # its best.pt
    finetune(_config(tmp_path / "last", "epochs=1", f"init={stopped / 'last.pt'}"), False)
    plain, from_file, from_folder, from_last = started
    assert not _same(plain, best)  # the seed's random start is not the trained one ...
    assert _same(from_file, best) and _same(from_folder, best)  # ... every tensor is, buffers too
    assert _same(from_last, last)
    assert "decoder.blocks.0.conv1.0.weight" in best and "segmentation_head.0.weight" in best


def test_init_run_trains_resumes_from_its_own_checkpoint_and_is_in_its_config(tmp_path, previous):
    init = f"init={previous / 'best.pt'}"
    whole = finetune(_config(tmp_path / "whole", "epochs=2", init), progress=False)
    saved = yaml.safe_load((tmp_path / "whole" / "config.yaml").read_text())
    assert saved["init"] == str(previous / "best.pt") and saved["encoder"] == "random"
    # killed after epoch 1's checkpoint; the init file is gone when it resumes: the run's own
    # last.pt is its start now, so the result is the uninterrupted run's
    part = _stopped(tmp_path / "part", 2, "epochs=2", init)
    moved = tmp_path / "moved"
    shutil.copytree(previous, moved)
    (previous / "best.pt").unlink()
    try:
        resumed = finetune(_config(part, "epochs=2", init), progress=False)
    finally:
        shutil.copy(moved / "best.pt", previous / "best.pt")
    for key in ("iou", "bce", "best_epoch"):
        assert resumed[key] == pytest.approx(whole[key], rel=1e-5), key
    # init is a key of the run: another start is another run
    with pytest.raises(SslsegError, match=r"another config \(init:"):
        finetune(_config(part, "epochs=2", f"init={moved / 'best.pt'}"), progress=False)


def _one_line_error(tmp_path, *extra):
    out = tmp_path / "never"
    with pytest.raises(SslsegError) as caught:
        finetune(_config(out, "epochs=1", *extra), progress=False)
    message = str(caught.value)
    assert message.startswith("config: init: ") and "\n" not in message
    assert not out.exists()
    return message


def test_missing_unreadable_and_foreign_files_are_refused(tmp_path, previous):
    from sslseg.backbones import build_resnet, save_encoder

    missing = tmp_path / "nope" / "best.pt"
    assert f"{missing}: no such checkpoint" in _one_line_error(tmp_path, f"init={missing}")
    empty = tmp_path / "empty-run"
    empty.mkdir()  # a folder without best.pt
    assert f"{empty / 'best.pt'}: no such" in _one_line_error(tmp_path, f"init={empty}")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    message = _one_line_error(tmp_path, f"init={garbage}")
    assert f"{garbage}: not a readable PyTorch checkpoint" in message
    encoder = save_encoder(build_resnet(), tmp_path / "enc" / "encoder.pt", {"arch": "resnet18"})
    assert "not a finetune checkpoint" in _one_line_error(tmp_path, f"init={encoder}")
    # a run's own checkpoint cannot be its start
    own = tmp_path / "own"
    own.mkdir()
    shutil.copy(previous / "best.pt", own / "best.pt")
    with pytest.raises(SslsegError, match="config: init: .*this run itself"):
        finetune(_config(own, "epochs=1", f"init={own}"), progress=False)
    assert sorted(p.name for p in own.iterdir()) == ["best.pt"]


def test_another_architecture_is_refused(tmp_path, previous):
    # the run's config.yaml says resnet18
    message = _one_line_error(tmp_path, f"init={previous}", "arch=resnet50")
    expected = f"{previous / 'best.pt'}: its run trained a U-Net on resnet18, but arch is resnet50"
    assert message == f"config: init: {expected}"
    # no config.yaml beside the file: the state_dict itself does not fit
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(previous / "best.pt", alone / "best.pt")
    message = _one_line_error(tmp_path, f"init={alone / 'best.pt'}", "arch=resnet50")
    assert "its weights do not fit the resnet50 U-Net" in message
    # one tensor of another shape
    state = torch.load(previous / "best.pt", weights_only=True)
    state["model"]["segmentation_head.0.weight"] = torch.zeros(2, 16, 3, 3)
    torch.save(state, alone / "best.pt")
    message = _one_line_error(tmp_path, f"init={alone / 'best.pt'}")
    assert "do not fit the resnet18 U-Net" in message and "segmentation_head" in message


def test_init_with_a_pretrained_encoder_conflicts(tmp_path, capsys):
    with pytest.raises(SslsegError, match="config: init: /x/best.pt .*encoder=imagenet"):
        load_config(FinetuneConfig, None, ["init=/x/best.pt", "encoder=imagenet"])
    out = tmp_path / "never"
    args = ["finetune", f"out={out}", "init=/x/best.pt", "encoder=/y/encoder.pt", "--quiet"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "init" in err and "/x/best.pt" in err and "encoder=/y/encoder.pt" in err
    assert "\n" not in err and "Traceback" not in err
    assert not out.exists()
    assert load_config(FinetuneConfig, None, ["init=/x/best.pt"]).encoder == "random"


def test_a_start_trained_on_the_test_images_is_refused(tmp_path, previous, started):
    # seed 1's test images include some of seed 0's train and validation images
    message = _one_line_error(tmp_path, f"init={previous}", "seed=1")
    assert "its run (or what it started from) trained on" in message
    assert "of the 16 test images" in message
    # ... also through a run that started from it (its own split on another source)
    chained = tmp_path / "chained"
    chained.mkdir()
    shutil.copy(previous / "best.pt", chained / "best.pt")
    other = {"source": "seg-folder", "root": str(tmp_path), "arch": "resnet18"}
    (chained / "config.yaml").write_text(yaml.safe_dump({**other, "init": str(previous)}))
    assert "trained on" in _one_line_error(tmp_path, f"init={chained}", "seed=1")
    (chained / "config.yaml").write_text(yaml.safe_dump(other))
    finetune(_config(tmp_path / "unrelated", "epochs=1", f"init={chained}", "seed=1"), False)
    # the same split (seed 0) is fine, and transductive=true takes any start
    finetune(_config(tmp_path / "a", "epochs=1", f"init={previous}"), False)
    opted = _config(tmp_path / "b", "epochs=1", f"init={previous}", "seed=1", "transductive=true")
    finetune(opted, False)
    assert len(started) == 3
