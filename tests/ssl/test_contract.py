"""What every method of the registry promises, tested once for all of them.

A new method joins these tests by its line in ``REGISTRY`` (and, to keep them fast, small
options below): its export loads into torchvision, a killed and resumed run equals an
uninterrupted one, and ``configs/pretrain/<name>.yaml`` loads and builds. Method-specific
checks (hand-computed losses, schedules, queues) stay in ``test_<name>.py``.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from tiny import tiny_backbone
from torch import nn

from sslseg.augment.views import MultiView
from sslseg.config import load_config
from sslseg.runs import RunDir
from sslseg.ssl.command import PretrainConfig, build
from sslseg.ssl.registry import REGISTRY, build_method
from sslseg.ssl.train import TrainSettings, export, pretrain

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "pretrain"

#: small heads on a ResNet-18 (the export test)
RESNET_OPTIONS = {
    "moco": {"queue_size": 32},
    "byol": {"hidden_dim": 64},
    "simsiam": {"hidden_dim": 64, "out_dim": 64, "pred_hidden_dim": 16},
    "swav": {"hidden_dim": 64, "n_prototypes": 16},
    "barlow_twins": {"hidden_dim": 64, "out_dim": 32},
}

#: a tiny network (the resume test); SwAV's prototypes unfreeze during epoch 2 of 3
TINY_OPTIONS = {
    "simclr": {"temperature": 0.5, "hidden_dim": 16, "out_dim": 8},
    "moco": {"queue_size": 20, "hidden_dim": 16, "out_dim": 8},
    "byol": {"hidden_dim": 16, "out_dim": 8},
    "simsiam": {"hidden_dim": 16, "out_dim": 16, "pred_hidden_dim": 4},
    "swav": {"hidden_dim": 16, "out_dim": 8, "n_prototypes": 5, "freeze_prototypes_steps": 4},
    "barlow_twins": {"hidden_dim": 16, "out_dim": 6},
}


def tiny_method(name: str) -> nn.Module:
    torch.manual_seed(0)
    backbone = tiny_backbone()
    return REGISTRY[name](backbone, 8, **TINY_OPTIONS.get(name, {}))


def _same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        # tensors bit for bit; extra state (SwAV's step count) by value
        assert torch.equal(a[k], b[k]) if torch.is_tensor(a[k]) else a[k] == b[k], k


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_registry_name_is_the_methods_name(name):
    # the name written to encoder.json is the one `method=` takes, the class is in <name>.py
    assert REGISTRY[name].name == name and REGISTRY[name].paper
    assert REGISTRY[name].__module__ == f"sslseg.ssl.{name}"


def _export_into_torchvision(method, run: RunDir, stem: str) -> dict:
    """Export ``method`` (channels-last, as training leaves it) and load it into torchvision."""
    with torch.no_grad():
        method.backbone.layer1[0].conv1.weight.fill_(0.25)
    method.to(memory_format=torch.channels_last)
    state = torch.load(
        export(method, run, {"arch": "resnet18", "stem": stem, "epochs": 1}), weights_only=True
    )
    model = torchvision.models.resnet18()
    if stem == "cifar":
        model.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        model.maxpool = nn.Identity()
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert sorted(missing) == ["fc.bias", "fc.weight"] and unexpected == []
    assert torch.all(model.layer1[0].conv1.weight == 0.25)
    meta = run.read_json("encoder.json")
    assert meta["method"] == method.name and meta["stem"] == stem
    return state


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_step_then_export_loads_into_torchvision_with_only_fc_missing(tmp_path, name):
    method = build_method(name, "resnet18", "imagenet", **RESNET_OPTIONS.get(name, {}))
    loss = method.training_step([torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16)])
    assert loss.shape == () and torch.isfinite(loss)
    loss.backward()
    assert method.backbone.conv1.weight.grad.abs().sum() > 0
    method.after_step(0.5)
    state = _export_into_torchvision(method, RunDir(tmp_path).create(), "imagenet")
    # the online backbone is exported (not MoCo's key encoder or BYOL's target), all of it
    online = method.backbone.state_dict()
    for key, value in state.items():
        assert torch.equal(value, online[key]), key


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_cifar_stem_export_loads_into_torchvision(tmp_path, name):
    method = build_method(name, "resnet18", "cifar", **RESNET_OPTIONS.get(name, {}))
    state = _export_into_torchvision(method, RunDir(tmp_path).create(), "cifar")
    assert state["conv1.weight"].shape == (64, 3, 3, 3)


class Killed(Exception):
    pass


def _kill_after_first(epoch, _record):
    if epoch == 1:
        raise Killed


def _after_resume_moco(whole, resumed, state):
    assert "queue" in state and "backbone_momentum.0.weight" in state
    # 9 steps x 16 keys through a queue of 20
    assert int(state["queue_ptr"]) == (9 * 16) % 20


def _after_resume_byol(whole, resumed, state):
    assert any(k.startswith("backbone_momentum.") for k in state)
    # the target lags behind the online network
    assert not torch.equal(state["backbone.0.weight"], state["backbone_momentum.0.weight"])


def _after_resume_swav(whole, resumed, state):
    assert whole.steps_done == resumed.steps_done == 9


#: what each method's own state must show after the resumed run
AFTER_RESUME = {"moco": _after_resume_moco, "byol": _after_resume_byol, "swav": _after_resume_swav}


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_resumed_run_equals_uninterrupted(tmp_path, name):
    images = np.random.default_rng(0).integers(0, 256, (24, 8, 8, 3), dtype=np.uint8)
    views = MultiView(REGISTRY[name].view_specs(8))
    settings = TrainSettings(
        epochs=3, batch_size=8, lr=0.1, warmup_epochs=1, progress=False, seed=1
    )
    whole = tiny_method(name)
    pretrain(whole, images, views, settings, RunDir(tmp_path / "a").create())

    run_b = RunDir(tmp_path / "b").create()
    with pytest.raises(Killed):
        pretrain(tiny_method(name), images, views, settings, run_b, on_epoch_end=_kill_after_first)
    resumed = tiny_method(name)
    pretrain(resumed, images, views, settings, run_b)
    _same_state(whole.state_dict(), resumed.state_dict())
    log_a, log_b = RunDir(tmp_path / "a").read_log(), run_b.read_log()
    assert [r["loss"] for r in log_a] == [r["loss"] for r in log_b]
    if name in AFTER_RESUME:
        AFTER_RESUME[name](whole, resumed, whole.state_dict())


def test_every_method_has_a_config_and_every_config_a_method():
    assert sorted(p.stem for p in CONFIGS.glob("*.yaml")) == sorted(REGISTRY)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_method_config_loads_and_builds(name):
    cfg = load_config(PretrainConfig, CONFIGS / f"{name}.yaml")
    assert cfg.method == name
    method = build(cfg)
    assert isinstance(method, REGISTRY[name])
    assert type(method).view_specs(cfg.side)
