import json
import math
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from sslseg.augment.views import MultiView
from sslseg.errors import SslsegError
from sslseg.runs import RunDir
from sslseg.ssl.moco import MoCo, info_nce
from sslseg.ssl.registry import REGISTRY, build_method
from sslseg.ssl.train import TrainSettings, export, pretrain


def tiny_backbone() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )


def tiny_moco(**options) -> MoCo:
    torch.manual_seed(0)
    return MoCo(tiny_backbone(), 8, hidden_dim=16, out_dim=8, **{"queue_size": 20, **options})


def _info_nce_by_hand(q, k, queue, tau):
    """MoCo eq. (1) with plain Python loops, mean over queries."""

    def unit(v):
        return v / v.norm()

    total = 0.0
    for qi, ki in zip(q.double(), k.double(), strict=True):
        qi, ki = unit(qi), unit(ki)
        pos = math.exp(float(qi @ ki) / tau)
        neg = sum(math.exp(float(qi @ unit(kj)) / tau) for kj in queue.double())
        total += -math.log(pos / (pos + neg))
    return total / len(q)


@pytest.mark.parametrize("tau", [0.07, 0.2, 1.0])
def test_info_nce_with_a_small_queue_equals_the_formula(tau):
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g)
    queue = F.normalize(torch.randn(5, 6, generator=g), dim=1)
    assert float(info_nce(q, k, queue, tau)) == pytest.approx(
        _info_nce_by_hand(q, k, queue, tau), rel=1e-5
    )


def test_symmetric_loss_uses_both_views_as_queries():
    method = tiny_moco()
    views = [torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)]
    loss = method.training_step(views)
    q0, q1 = method._encode(method.backbone, method.projection, views)
    with torch.no_grad():
        k0, k1 = method._encode(method.backbone_momentum, method.projection_momentum, views)
    expected = 0.5 * (info_nce(q0, k1, method.queue, 0.2) + info_nce(q1, k0, method.queue, 0.2))
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    assert method._pending.shape == (8, 8)


def test_momentum_update_is_an_exponential_moving_average():
    method = tiny_moco(momentum=0.9)
    with torch.no_grad():
        for p in method.backbone.parameters():
            p.add_(1.0)
    before = [p.clone() for p in method.backbone_momentum.parameters()]
    online = [p.clone() for p in method.backbone.parameters()]
    method.after_step(0.5)
    for t_old, o, t_new in zip(before, online, method.backbone_momentum.parameters(), strict=True):
        assert torch.allclose(t_new, 0.9 * t_old + 0.1 * o, atol=1e-6)
    assert not any(p.requires_grad for p in method.backbone_momentum.parameters())
    assert not any(p.requires_grad for p in method.projection_momentum.parameters())


def test_queue_after_an_enqueue_pointer_content_and_wrap_around():
    method = tiny_moco()  # queue of 20
    old = method.queue.clone()
    first = torch.arange(12 * 8, dtype=torch.float32).view(12, 8)
    method.enqueue(first)
    assert int(method.queue_ptr) == 12
    assert torch.equal(method.queue[:12], first) and torch.equal(method.queue[12:], old[12:])
    second = -torch.ones(12, 8)
    method.enqueue(second)  # 8 slots left: 8 at the end, 4 wrap to the front
    assert int(method.queue_ptr) == 4
    assert torch.equal(method.queue[12:], second[:8]) and torch.equal(method.queue[:4], second[8:])
    assert torch.equal(method.queue[4:12], first[4:12])


def test_training_step_then_after_step_enqueues_normalised_keys():
    method = tiny_moco()
    loss = method.training_step([torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)])
    loss.backward()
    assert method.backbone[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in method.backbone_momentum.parameters())
    pending = method._pending.clone()
    method.after_step(0.1)
    assert int(method.queue_ptr) == 8 and method._pending is None
    assert torch.allclose(method.queue[:8], pending)
    assert torch.allclose(method.queue[:8].norm(dim=1), torch.ones(8))


def test_resumed_run_equals_uninterrupted_with_queue_and_momentum_encoder(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (24, 8, 8, 3), dtype=np.uint8)
    views = MultiView(MoCo.view_specs(8))
    settings = TrainSettings(
        epochs=3, batch_size=8, lr=0.1, warmup_epochs=1, progress=False, seed=1
    )
    whole = tiny_moco()
    pretrain(whole, images, views, settings, RunDir(tmp_path / "a").create())

    class Killed(Exception):
        pass

    def kill_after_first(epoch, _record):
        if epoch == 1:
            raise Killed

    run_b = RunDir(tmp_path / "b").create()
    with pytest.raises(Killed):
        pretrain(tiny_moco(), images, views, settings, run_b, on_epoch_end=kill_after_first)
    resumed = tiny_moco()
    pretrain(resumed, images, views, settings, run_b)
    state_a, state_b = whole.state_dict(), resumed.state_dict()
    assert "queue" in state_a and "backbone_momentum.0.weight" in state_a
    for k in state_a:
        assert torch.equal(state_a[k], state_b[k]), k
    # 9 steps x 16 keys through a queue of 20
    assert int(state_a["queue_ptr"]) == (9 * 16) % 20
    log_a, log_b = RunDir(tmp_path / "a").read_log(), run_b.read_log()
    assert [r["loss"] for r in log_a] == [r["loss"] for r in log_b]


def test_resnet18_step_and_export_loads_into_torchvision(tmp_path):
    method = build_method("moco", "resnet18", "imagenet", queue_size=32)
    assert REGISTRY["moco"] is MoCo
    views = [torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16)]
    method.training_step(views).backward()
    method.after_step(0.5)
    run = RunDir(tmp_path).create()
    state = torch.load(export(method, run, {"arch": "resnet18"}), weights_only=True)
    missing, unexpected = torchvision.models.resnet18().load_state_dict(state, strict=False)
    assert sorted(missing) == ["fc.bias", "fc.weight"] and unexpected == []
    # the online backbone is exported, not the key encoder
    assert torch.equal(state["conv1.weight"], method.backbone.conv1.weight)
    assert run.read_json("encoder.json")["method"] == "moco"


def test_option_errors():
    with pytest.raises(SslsegError, match="temperature"):
        tiny_moco(temperature=0)
    with pytest.raises(SslsegError, match="queue_size"):
        tiny_moco(queue_size=0)
    with pytest.raises(SslsegError, match="2 views"):
        tiny_moco().training_step([torch.randn(2, 3, 8, 8)])


DDP_WORKER = textwrap.dedent("""
    import json, sys
    import numpy as np, torch, torch.distributed as dist
    from torch import nn
    from sslseg.augment.views import MultiView
    from sslseg.ssl.registry import REGISTRY
    from sslseg.ssl.train import TrainSettings, init_distributed, pretrain

    rank, world = init_distributed("cpu")
    images = np.random.default_rng(0).integers(0, 256, (32, 8, 8, 3), dtype=np.uint8)
    small = {"moco": {"queue_size": 20, "hidden_dim": 16, "out_dim": 8},
             "byol": {"hidden_dim": 16, "out_dim": 8},
             "simsiam": {"hidden_dim": 16, "out_dim": 8, "pred_hidden_dim": 4},
             "swav": {"hidden_dim": 16, "out_dim": 8, "n_prototypes": 6,
                      "freeze_prototypes_steps": 2},
             "barlow_twins": {"hidden_dim": 16, "out_dim": 8}}
    out = {}
    for name, options in small.items():
        torch.manual_seed(0)
        backbone = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten())
        cls = REGISTRY[name]
        method = cls(backbone, 8, **options)
        summary = pretrain(method, images, MultiView(cls.view_specs(8)),
                           TrainSettings(epochs=2, batch_size=4, progress=False))
        # BN running statistics are per process (DDP broadcasts rank 0's before each forward)
        kept = [t for k, t in method.state_dict().items() if isinstance(t, torch.Tensor)
                and not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
        flat = torch.cat([t.detach().float().flatten() for t in kept])
        gathered = [torch.zeros_like(flat) for _ in range(world)]
        dist.all_gather(gathered, flat)
        out[name] = {"same_state": all(torch.equal(gathered[0], t) for t in gathered),
                     "loss": summary["final_loss"]}
        if name == "moco":
            out[name]["queue_ptr"] = int(method.queue_ptr)
    if rank == 0:
        json.dump(out, open(sys.argv[1], "w"))
    dist.destroy_process_group()
""")


def test_ddp_two_cpu_processes_every_new_method_stays_in_sync(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(DDP_WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # an explicit free port on 127.0.0.1: with --master_port 0 the workers' rendezvous hung
    # on this machine
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(port),
            str(script),
            str(tmp_path / "check.json"),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    check = json.loads((tmp_path / "check.json").read_text())
    assert sorted(check) == ["barlow_twins", "byol", "moco", "simsiam", "swav"]
    for name, row in check.items():
        # parameters, momentum encoders and queues equal on both processes
        assert row["same_state"], name
        assert math.isfinite(row["loss"]), name
    # 2 epochs x 4 steps, each enqueueing 2 views x 4 images x 2 processes, in a queue of 20
    assert check["moco"]["queue_ptr"] == (2 * 4 * 16) % 20
