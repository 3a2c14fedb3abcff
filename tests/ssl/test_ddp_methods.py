"""Every method under DDP: two CPU processes (gloo) against one process with the whole batch.

One ``torchrun`` launch (a module fixture) runs every method of the registry twice:

1. **Equivalence**: each process takes its half of one fixed batch of views; two steps of DDP
   (forward, backward, SGD, ``after_step``) must give the losses, the (averaged) gradients and
   the final state — MoCo's queue included — of one process stepping on the whole batch. This
   is what each method's global parts are for: SimCLR's gathered negatives, MoCo's gathered
   keys, SwAV's gathered Sinkhorn, Barlow Twins' global standardisation and cross-correlation;
   BYOL and SimSiam have none. BatchNorm is in eval mode here, because DDP keeps batch
   statistics per process (SyncBatchNorm needs CUDA) and so does the reference.
2. **Training**: :func:`sslseg.ssl.train.pretrain` under DDP in train mode keeps both
   processes' weights, momentum encoders and queues identical.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest
import torch
from tiny import tiny_backbone, torchrun_two_cpu_processes
from torch import nn

from sslseg.ssl.registry import REGISTRY

HALF = 4  # images per process
SMALL = {
    "simclr": {"hidden_dim": 16, "out_dim": 8},
    "moco": {"queue_size": 20, "hidden_dim": 16, "out_dim": 8},
    "byol": {"hidden_dim": 16, "out_dim": 8},
    "simsiam": {"hidden_dim": 16, "out_dim": 8, "pred_hidden_dim": 4},
    "swav": {"hidden_dim": 16, "out_dim": 8, "n_prototypes": 6, "freeze_prototypes_steps": 1},
    "barlow_twins": {"hidden_dim": 16, "out_dim": 8},
}


def tiny(name: str) -> nn.Module:
    """Method ``name`` on a one-conv backbone, the same weights in every process."""
    torch.manual_seed(0)
    backbone = tiny_backbone()
    return REGISTRY[name](backbone, 8, **SMALL[name])


def views(n: int = 2 * HALF) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return [torch.randn(n, 3, 8, 8, generator=g) for _ in range(2)]


def two_steps(model: nn.Module, method: nn.Module, batch: list[torch.Tensor], mean) -> dict:
    """Two SGD steps of ``model`` (``method`` or its DDP wrapper) in eval-mode BatchNorm."""
    method.eval()
    opt = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=0.05)
    losses, grads = [], []
    for step in range(2):
        opt.zero_grad()
        loss = model(batch)
        loss.backward()
        losses.append(float(mean(loss.detach())))
        grads.append([p.grad.clone() for p in method.parameters() if p.requires_grad])
        opt.step()
        method.after_step((step + 1) / 2)
    state = {k: v.clone() for k, v in method.state_dict().items() if isinstance(v, torch.Tensor)}
    return {"losses": losses, "grads": grads, "state": state}


WORKER = textwrap.dedent("""
    import importlib.util, sys
    from pathlib import Path
    import numpy as np, torch, torch.distributed as dist
    from torch import nn
    from sslseg.augment.views import MultiView
    from sslseg.ssl.train import TrainSettings, close_distributed, init_distributed, pretrain

    sys.path.insert(0, sys.argv[-1])  # the test folder, for its helper tiny.py
    spec = importlib.util.spec_from_file_location("ddp_cases", sys.argv[1])
    T = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(T)
    rank, world = init_distributed("cpu")

    def mean(t):
        dist.all_reduce(t)
        return t / world

    out = {"equal": {}, "train": {}}
    for name in T.SMALL:
        method = T.tiny(name)
        model = nn.parallel.DistributedDataParallel(method)
        local = [v[rank * T.HALF : (rank + 1) * T.HALF] for v in T.views()]
        out["equal"][name] = T.two_steps(model, method, local, mean)

    images = np.random.default_rng(0).integers(0, 256, (16, 8, 8, 3), dtype=np.uint8)
    for name in T.SMALL:
        method = T.tiny(name)
        summary = pretrain(method, images, MultiView(type(method).view_specs(8)),
                           TrainSettings(epochs=1, batch_size=T.HALF, progress=False))
        # BN running statistics are per process (DDP broadcasts rank 0's before each forward)
        kept = [t for k, t in method.state_dict().items() if isinstance(t, torch.Tensor)
                and not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
        flat = torch.cat([t.detach().float().flatten() for t in kept])
        gathered = [torch.zeros_like(flat) for _ in range(world)]
        dist.all_gather(gathered, flat)
        out["train"][name] = {
            "same_state": all(torch.equal(gathered[0], t) for t in gathered),
            "loss": summary["final_loss"],
            "steps": summary["steps_per_epoch"],
            "queue_ptr": int(method.queue_ptr) if name == "moco" else None,
        }
    if rank == 0:
        torch.save(out, sys.argv[2])
    del model
    close_distributed()
""")


@pytest.fixture(scope="module")
def ddp(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("ddp")
    script = tmp / "worker.py"
    script.write_text(WORKER)
    torchrun_two_cpu_processes(script, str(Path(__file__).resolve()), str(tmp / "out.pt"))
    return torch.load(tmp / "out.pt", weights_only=False)


def test_every_registered_method_is_covered():
    assert sorted(SMALL) == sorted(REGISTRY)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_two_processes_equal_one_with_the_whole_batch(ddp, name):
    got = ddp["equal"][name]
    method = tiny(name)
    want = two_steps(method, method, views(), lambda t: t)
    assert got["losses"] == pytest.approx(want["losses"], rel=1e-4, abs=1e-6)
    for step, (g_step, w_step) in enumerate(zip(got["grads"], want["grads"], strict=True)):
        # sums in another order round differently: tolerances relative to the gradient's norm
        # (a parameter whose exact gradient is 0, e.g. a bias before a standardisation, holds
        # rounding noise only)
        scale = float(torch.cat([w.flatten() for w in w_step]).norm())
        for i, (g, w) in enumerate(zip(g_step, w_step, strict=True)):
            assert float((g - w).norm()) <= 1e-4 * float(w.norm()) + 1e-5 * scale, (name, step, i)
    assert got["state"].keys() == want["state"].keys()
    for key, w in want["state"].items():
        # includes the momentum encoders and MoCo's queue and pointer
        assert torch.allclose(got["state"][key].float(), w.float(), rtol=1e-4, atol=1e-6), key


@pytest.mark.parametrize("name", sorted(SMALL))
def test_training_under_ddp_keeps_the_processes_in_sync(ddp, name):
    row = ddp["train"][name]
    assert row["same_state"], name
    assert math.isfinite(row["loss"]) and row["steps"] == 16 // (HALF * 2)
    if name == "moco":
        # 2 steps, each enqueueing 2 views x 4 images x 2 processes, in a queue of 20
        assert row["queue_ptr"] == (2 * 2 * HALF * 2) % 20
