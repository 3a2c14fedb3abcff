import math

import pytest
import torch
import torch.nn.functional as F
from lightly.loss.swav_loss import sinkhorn
from tiny import tiny_backbone

from sslseg.errors import SslsegError
from sslseg.ssl.registry import build_method
from sslseg.ssl.swav import SwAV


def tiny_swav(**options) -> SwAV:
    torch.manual_seed(0)
    backbone = tiny_backbone()
    return SwAV(
        backbone,
        8,
        **{
            "hidden_dim": 16,
            "out_dim": 8,
            "n_prototypes": 5,
            "freeze_prototypes_steps": 2,
            **options,
        },
    )


def _sinkhorn_by_hand(scores, iterations, eps):
    """SwAV Algorithm 1 (official code) with lists: Q = exp(S/eps)^T, alternately make the
    prototype rows sum to 1/K and the sample columns to 1/B; return B x K codes * B."""
    b, k = scores.shape
    q = [[math.exp(float(scores[i, j]) / eps) for i in range(b)] for j in range(k)]
    total = sum(map(sum, q))
    q = [[x / total for x in row] for row in q]
    for _ in range(iterations):
        q = [[x / sum(row) / k for x in row] for row in q]
        cols = [sum(q[j][i] for j in range(k)) for i in range(b)]
        q = [[q[j][i] / cols[i] / b for i in range(b)] for j in range(k)]
    return torch.tensor([[q[j][i] * b for j in range(k)] for i in range(b)], dtype=torch.float64)


@pytest.mark.parametrize("iterations", [1, 3, 10])
def test_sinkhorn_equals_the_algorithm(iterations):
    g = torch.Generator().manual_seed(0)
    scores = F.normalize(torch.randn(6, 4, generator=g), dim=1)
    q = sinkhorn(scores.double(), iterations=iterations, epsilon=0.5)
    assert torch.allclose(q, _sinkhorn_by_hand(scores, iterations, 0.5), atol=1e-9)


def test_sinkhorn_assignments_sum_to_the_marginals():
    g = torch.Generator().manual_seed(1)
    b, k = 32, 8
    # uneven scores: most samples prefer prototype 0
    scores = F.normalize(torch.randn(b, k, generator=g) + torch.tensor([2.0] + [0.0] * 7), dim=1)
    for iterations in (3, 50):
        q = sinkhorn(scores.double(), iterations=iterations, epsilon=0.05)
        # every sample's code is a distribution over prototypes (exact after the last step)
        assert torch.allclose(q.sum(1), torch.ones(b, dtype=torch.float64), atol=1e-9)
    # the batch is split equally among prototypes: B/K samples each, at convergence
    assert torch.allclose(q.sum(0), torch.full((k,), b / k, dtype=torch.float64), atol=1e-4)
    # three iterations already move far towards equal partition from the plain softmax
    soft = torch.softmax(scores.double() / 0.05, dim=1).sum(0)
    three = sinkhorn(scores.double(), iterations=3, epsilon=0.05).sum(0)
    assert (three - b / k).abs().max() < 0.2 * (soft - b / k).abs().max()


def _swav_loss_by_hand(s0, s1, t, eps, iterations):
    """Eq. (1)-(2): each view predicts the other's codes, -sum_k q_k log softmax(s/t)_k."""

    def ce(s, q):
        total = 0.0
        for i in range(len(s)):
            logits = [float(x) / t for x in s[i]]
            log_z = math.log(sum(math.exp(v) for v in logits))
            total -= sum(float(q[i, j]) * (logits[j] - log_z) for j in range(len(logits)))
        return total / len(s)

    q0, q1 = _sinkhorn_by_hand(s0, iterations, eps), _sinkhorn_by_hand(s1, iterations, eps)
    return 0.5 * (ce(s1, q0) + ce(s0, q1))


def test_swapped_prediction_loss_equals_the_formula():
    g = torch.Generator().manual_seed(2)
    s0, s1 = (F.normalize(torch.randn(6, 5, generator=g), dim=1) for _ in range(2))
    method = tiny_swav(temperature=0.1, sinkhorn_epsilon=0.05, sinkhorn_iterations=3)
    loss = method.criterion([s0.double(), s1.double()], [])
    assert float(loss) == pytest.approx(_swav_loss_by_hand(s0, s1, 0.1, 0.05, 3), rel=1e-6)


def test_training_step_gives_a_scalar_with_normalised_prototypes():
    method = tiny_swav()
    with torch.no_grad():
        method.prototypes.heads[0].weight.mul_(3.0)
    loss = method.training_step([torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)])
    assert loss.shape == () and torch.isfinite(loss)
    norms = method.prototypes.heads[0].weight.norm(dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-6)


def test_prototypes_frozen_for_the_first_steps_then_trained():
    method = tiny_swav(freeze_prototypes_steps=2)
    weight = method.prototypes.heads[0].weight
    opt = torch.optim.SGD(method.parameters(), lr=0.5, momentum=0.9, weight_decay=0.1)
    views = [torch.randn(8, 3, 8, 8), torch.randn(8, 3, 8, 8)]
    start = F.normalize(weight.detach().clone(), dim=1)
    for step in range(3):
        opt.zero_grad()
        method.training_step(views).backward()
        frozen = step < 2
        assert method.prototypes_frozen is frozen
        assert bool(weight.grad.abs().sum() == 0) is frozen
        assert method.backbone[0].weight.grad.abs().sum() > 0  # the rest trains throughout
        opt.step()
        method.after_step((step + 1) / 3)
        direction = F.normalize(weight.detach(), dim=1)
        # weight decay only rescales a frozen prototype; normalisation undoes it
        assert torch.allclose(direction, start, atol=1e-6) is frozen
    assert method.state_dict()["_extra_state"] == {"steps_done": 3}
    fresh = tiny_swav()
    fresh.load_state_dict(method.state_dict())
    assert fresh.steps_done == 3 and not fresh.prototypes_frozen


def test_prototypes_train_from_the_first_step_by_default():
    # lightly's default (SwaVPrototypes n_steps_frozen_prototypes=0 and its CIFAR-10 benchmark)
    method = build_method("swav", "resnet18", "cifar", hidden_dim=16, out_dim=8, n_prototypes=5)
    assert method.freeze_prototypes_steps == 0 and not method.prototypes_frozen


def test_option_errors():
    with pytest.raises(SslsegError, match="freeze_prototypes_steps"):
        tiny_swav(freeze_prototypes_steps=-1)
    with pytest.raises(SslsegError, match="temperature"):
        tiny_swav(temperature=0)
    with pytest.raises(SslsegError, match="n_prototypes"):
        tiny_swav(n_prototypes=1)
    with pytest.raises(SslsegError, match="at least 2 views"):
        tiny_swav().training_step([torch.randn(2, 3, 8, 8)])
