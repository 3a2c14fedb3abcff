import math

import pytest
import torch
import torch.nn.functional as F
from tiny import tiny_backbone

from sslseg.errors import SslsegError
from sslseg.ssl.moco import MoCo, info_nce


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
    # keys of view 1 then view 0, enqueued one view at a time after the step
    assert [tuple(k.shape) for k in method._pending] == [(4, 8), (4, 8)]
    assert torch.allclose(torch.cat(method._pending), F.normalize(torch.cat([k1, k0]), dim=1))


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
    pending = torch.cat(method._pending)
    method.after_step(0.1)
    assert int(method.queue_ptr) == 8 and method._pending == []
    assert torch.allclose(method.queue[:8], pending)
    assert torch.allclose(method.queue[:8].norm(dim=1), torch.ones(8))


def test_option_errors():
    with pytest.raises(SslsegError, match="temperature"):
        tiny_moco(temperature=0)
    with pytest.raises(SslsegError, match="queue_size"):
        tiny_moco(queue_size=0)
    with pytest.raises(SslsegError, match="2 views"):
        tiny_moco().training_step([torch.randn(2, 3, 8, 8)])
