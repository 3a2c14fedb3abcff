import json
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from tiny import tiny_backbone, torchrun_two_cpu_processes
from torch import nn

from sslseg.augment.views import MultiView, simclr_specs
from sslseg.errors import SslsegError
from sslseg.runs import RunDir
from sslseg.ssl import command
from sslseg.ssl.simclr import SimCLR
from sslseg.ssl.train import TrainSettings, pretrain, warmup_cosine


def tiny_simclr() -> SimCLR:
    torch.manual_seed(0)
    backbone = tiny_backbone()
    return SimCLR(backbone, 8, temperature=0.5, hidden_dim=16, out_dim=8)


def tiny_images(n=24, side=8):
    return np.random.default_rng(0).integers(0, 256, (n, side, side, 3), dtype=np.uint8)


SETTINGS = dict(epochs=3, batch_size=8, lr=0.1, warmup_epochs=1, progress=False, seed=1)


class Killed(Exception):
    pass


@pytest.mark.parametrize(
    ("optimizer", "precision"),
    [("sgd", "fp32"), ("adam", "fp32"), ("lars", "fp32"), ("sgd", "bf16")],
)
def test_resumed_run_equals_uninterrupted(tmp_path, optimizer, precision):
    images, views = tiny_images(), MultiView(simclr_specs(8))
    settings = TrainSettings(optimizer=optimizer, precision=precision, **SETTINGS)
    whole = tiny_simclr()
    pretrain(whole, images, views, settings, RunDir(tmp_path / "a").create())

    def kill_after_first(epoch, _record):
        if epoch == 1:
            raise Killed

    run_b = RunDir(tmp_path / "b").create()
    with pytest.raises(Killed):
        pretrain(tiny_simclr(), images, views, settings, run_b, on_epoch_end=kill_after_first)
    resumed = tiny_simclr()  # a fresh process: new model, state comes from the checkpoint
    pretrain(resumed, images, views, settings, run_b)

    for (k, a), b in zip(whole.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    log_a, log_b = RunDir(tmp_path / "a").read_log(), run_b.read_log()
    assert [r["epoch"] for r in log_b] == [1, 2, 3]
    assert {r["compute_precision"] for r in log_b} == {precision}
    assert [r["loss"] for r in log_a] == [r["loss"] for r in log_b]
    assert log_b[-1]["lr"] == pytest.approx(0.0, abs=1e-12)
    assert (tmp_path / "b" / "encoder.pt").is_file()


def test_non_finite_loss_stops_loudly(tmp_path):
    class Broken(SimCLR):
        def training_step(self, views):
            return super().training_step(views) * float("nan")

    torch.manual_seed(0)
    method = Broken(nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()), 4)
    with pytest.raises(SslsegError, match=r"loss: became nan at epoch 1 step 1"):
        pretrain(
            method,
            tiny_images(),
            MultiView(simclr_specs(8)),
            TrainSettings(**SETTINGS),
            RunDir(tmp_path).create(),
        )


def test_warmup_then_cosine():
    f = warmup_cosine(4, 14)
    assert [f(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert f(9) == pytest.approx(0.5)
    assert f(14) == pytest.approx(0.0)


def _image_folder(root, n=16, side=12):
    import cv2

    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        cv2.imwrite(
            str(root / f"im{i:02d}.png"), rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        )
    return root


def test_command_runs_resumes_and_refuses_a_changed_config(tmp_path, capsys):
    data = _image_folder(tmp_path / "imgs")
    out = tmp_path / "run"
    args = [
        "source=image-folder",
        f"root={data}",
        "side=8",
        "stem=cifar",
        "epochs=2",
        "batch_size=8",
        f"out={out}",
        "progress=false",
    ]
    assert command.main(args) == 0
    meta = json.loads((out / "encoder.json").read_text())
    assert meta["method"] == "simclr" and meta["epochs"] == 2 and meta["stem"] == "cifar"
    assert len(RunDir(out).read_log()) == 2
    assert command.main(args) == 0
    assert "already finished" in capsys.readouterr().out
    assert command.main(args[:-1] + ["lr=0.5", "progress=false"]) == 2
    assert "another config (lr" in capsys.readouterr().err
    assert command.main(args + ["--export-only"]) == 0
    assert command.main(args[:-1] + ["optimizer=rmsprop"]) == 2
    assert "optimizer" in capsys.readouterr().err
    assert command.main(args + ["nokey=1"]) == 2


WORKER = textwrap.dedent("""
    import json, sys
    import numpy as np, torch, torch.distributed as dist
    from torch import nn
    from sslseg.augment.views import MultiView, simclr_specs
    from sslseg.runs import RunDir
    from sslseg.ssl.simclr import SimCLR
    from sslseg.ssl.train import TrainSettings, close_distributed, init_distributed, pretrain

    sys.path.insert(0, sys.argv[-1])  # the test folder, for its helper tiny.py
    from tiny import tiny_backbone

    rank, world = init_distributed("cpu")
    out = sys.argv[1]
    # gathered negatives: the mean of the per-process losses equals one process's loss on
    # the whole batch
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    crit = SimCLR(nn.Identity(), 5).criterion
    half = slice(4 * rank, 4 * rank + 4)
    loss = crit(z0[half], z1[half]).detach()
    dist.all_reduce(loss)
    single = SimCLR(nn.Identity(), 5, gather_distributed=False).criterion(z0, z1)
    torch.manual_seed(0)
    method = SimCLR(tiny_backbone(), 8, hidden_dim=16, out_dim=8)
    images = np.random.default_rng(0).integers(0, 256, (32, 8, 8, 3), dtype=np.uint8)
    summary = pretrain(method, images, MultiView(simclr_specs(8)),
                       TrainSettings(epochs=2, batch_size=4, progress=False),
                       RunDir(out).create(), {"arch": "tiny"})
    flat = torch.cat([p.detach().flatten() for p in method.parameters()])
    gathered = [torch.zeros_like(flat) for _ in range(world)]
    dist.all_gather(gathered, flat)
    if rank == 0:
        json.dump({"gathered": float(loss) / world, "single": float(single),
                   "same_weights": all(torch.equal(gathered[0], t) for t in gathered),
                   "steps": summary["steps_per_epoch"], "world": summary["world_size"]},
                  open(out + "/check.json", "w"))
    close_distributed()
""")


def test_ddp_two_cpu_processes_gather_negatives_and_stay_in_sync(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    torchrun_two_cpu_processes(script, str(tmp_path / "run"), timeout=240)
    check = json.loads((tmp_path / "run" / "check.json").read_text())
    assert math.isclose(check["gathered"], check["single"], rel_tol=1e-5)
    assert check["same_weights"] and check["world"] == 2
    assert check["steps"] == 32 // (4 * 2)
    assert len(RunDir(tmp_path / "run").read_log()) == 2
    assert (tmp_path / "run" / "encoder.pt").is_file()


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("policy=fancy", "policy: unknown view policy 'fancy'"),
        pytest.param("device=cuda", "'cuda' asked for but CUDA is not", marks=pytest.mark.no_gpu),
    ],
)
def test_bad_settings_are_refused_before_anything_is_written(tmp_path, key, message):
    out = tmp_path / "never"
    proc = subprocess.run(
        [sys.executable, "-m", "sslseg.cli", "pretrain", "source=sample", key, f"out={out}"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_pretraining_leaves_out_the_fine_tuning_test_set_of_its_seed():
    from sslseg.config import load_config
    from sslseg.data.splits import make_split
    from sslseg.data.store import open_store

    store = open_store("sample", side=16, progress=False)
    cfg = load_config(command.PretrainConfig, None, ["source=sample", "seed=4"])
    used = command.training_store(cfg, store)
    test = {store.ids[i] for i in make_split(store.ids, 0.8, seed=4).test}
    assert len(used) == len(store) - len(test) and not set(used.ids) & test
    row = store.ids.index(used.ids[0])
    assert np.array_equal(used.images[0], store.images[row])
    assert used.hashes[0] == store.hashes[row]
    assert command.export_meta(cfg)["holdout"] == {"fraction": 0.2, "seed": 4}
    everything = load_config(command.PretrainConfig, None, ["source=sample", "transductive=true"])
    assert command.training_store(everything, store) is store


def test_every_loop_setting_comes_from_the_pretrain_config():
    import dataclasses

    from sslseg.ssl.command import PretrainConfig, train_settings
    from sslseg.ssl.train import TrainSettings

    loop_only = {"check_every"}  # the loop's own, not a user key
    config = {f.name for f in dataclasses.fields(PretrainConfig)}
    missing = {f.name for f in dataclasses.fields(TrainSettings)} - config - loop_only
    assert not missing, f"TrainSettings fields no PretrainConfig key sets: {missing}"
    s = train_settings(PretrainConfig(epochs=3, lr=0.2, momentum=0.8, compile=True))
    assert (s.epochs, s.lr, s.momentum, s.compile) == (3, 0.2, 0.8, True)
