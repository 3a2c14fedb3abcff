"""One seed, one run: ``sslseg pretrain ... seed=S`` names its weights bit for bit."""

import pytest
import torch

from sslseg.cli import main
from sslseg.config import load_config
from sslseg.runs import RunDir
from sslseg.ssl import train
from sslseg.ssl.command import PretrainConfig, build
from sslseg.ssl.registry import REGISTRY

TINY = ["source=sample", "side=32", "batch_size=16", "progress=false"]


class Killed(Exception):
    pass


def _pretrain(out, *extra, epochs=1):
    assert main(["pretrain", *TINY, f"epochs={epochs}", f"out={out}", *extra]) == 0
    encoder = torch.load(out / "encoder.pt", weights_only=True)
    # the whole method (heads, momentum encoder, queue, prototypes), not just the export
    method = torch.load(out / "checkpoint.pt", weights_only=False)["method"]
    losses = [r["loss"] for r in RunDir(out).read_log()]
    return encoder, method, losses


@pytest.fixture(scope="module")
def seed_3(tmp_path_factory):
    """One finished run per method with seed=3 (shared by the tests below)."""
    done = {}

    def get(name):
        if name not in done:
            done[name] = _pretrain(tmp_path_factory.mktemp(name), f"method={name}", "seed=3")
        return done[name]

    return get


def _same(a, b):
    # tensors bit for bit; extra state (SwAV's step count) by value
    if a.keys() != b.keys():
        return False
    return all(torch.equal(a[k], b[k]) if torch.is_tensor(a[k]) else a[k] == b[k] for k in a)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_seed_names_every_methods_initial_weights(name):
    cfg = load_config(PretrainConfig, None, [f"method={name}", "seed=7"])
    first = build(cfg).state_dict()
    torch.manual_seed(12345)  # whatever ran before (another rank's history, a test) ...
    torch.rand(99)
    state = torch.get_rng_state()
    again = build(cfg).state_dict()
    assert _same(first, again)  # ... does not change the weights
    assert torch.equal(torch.get_rng_state(), state)  # and the caller's stream is left as it was
    other = build(load_config(PretrainConfig, None, [f"method={name}", "seed=8"])).state_dict()
    assert not torch.equal(first["backbone.conv1.weight"], other["backbone.conv1.weight"])


@pytest.mark.parametrize("name", ["simclr", "moco"])
def test_same_command_twice_gives_the_same_encoder(tmp_path, name, seed_3):
    first = seed_3(name)
    torch.rand(5)  # the process's generator has moved on between the two commands
    again = _pretrain(tmp_path / "again", f"method={name}", "seed=3")
    assert _same(first[0], again[0]) and _same(first[1], again[1])
    assert first[2] == again[2]  # the logged loss too (it differed from the first epoch on)


def test_another_seed_gives_another_encoder(tmp_path, seed_3):
    first = seed_3("simclr")[0]
    other = _pretrain(tmp_path / "other", "method=simclr", "seed=4")[0]
    assert other.keys() == first.keys()
    assert not torch.equal(other["conv1.weight"], first["conv1.weight"])


def test_killed_and_restarted_run_equals_an_uninterrupted_one(tmp_path, monkeypatch):
    whole = _pretrain(tmp_path / "whole", "method=simclr", "seed=5", epochs=2)
    real = train.pretrain

    def killed_after_epoch_1(*args, **kwargs):
        def stop(epoch, _record):
            if epoch == 1:
                raise Killed

        return real(*args, **kwargs, on_epoch_end=stop)

    part = tmp_path / "part"
    with monkeypatch.context() as patch:
        patch.setattr(train, "pretrain", killed_after_epoch_1)
        with pytest.raises(Killed):
            main(["pretrain", *TINY, "epochs=2", f"out={part}", "method=simclr", "seed=5"])
    assert (part / "checkpoint.pt").is_file() and not (part / "encoder.pt").exists()
    # the same command again, as after a kill: a freshly built (seeded) method that then
    # takes the checkpoint's state
    resumed = _pretrain(part, "method=simclr", "seed=5", epochs=2)
    assert _same(whole[0], resumed[0]) and _same(whole[1], resumed[1])
    assert whole[2] == resumed[2]
