import math

import pytest
import torch
from tiny import tiny_backbone

from sslseg.errors import SslsegError
from sslseg.ssl.byol import BYOL, cosine_momentum


def tiny_byol(**options) -> BYOL:
    torch.manual_seed(0)
    return BYOL(tiny_backbone(), 8, hidden_dim=16, out_dim=8, **options)


def _two_minus_two_cos_by_hand(p0, p1, z0, z1):
    """BYOL eq. (2) ||p/|p| - z/|z| ||^2 per sample, mean over the batch and both directions."""

    def term(p, z):
        return sum(
            float(((a / a.norm() - b / b.norm()) ** 2).sum())
            for a, b in zip(p.double(), z.double(), strict=True)
        ) / len(p)

    return 0.5 * (term(p0, z1) + term(p1, z0))


def test_loss_is_half_of_two_minus_two_cos():
    g = torch.Generator().manual_seed(0)
    p0, p1, z0, z1 = (torch.randn(5, 7, generator=g) for _ in range(4))
    method = tiny_byol()
    assert float(method.loss(p0, p1, z0, z1)) == pytest.approx(
        0.5 * _two_minus_two_cos_by_hand(p0, p1, z0, z1), rel=1e-5
    )
    # identical directions cost 0, opposite ones 2
    assert float(method.loss(p0, p1, 3 * p1, 2 * p0)) == pytest.approx(0.0, abs=1e-6)
    assert float(method.loss(p0, p1, -p1, -p0)) == pytest.approx(2.0, abs=1e-6)


def test_loss_has_the_gradient_of_lightlys_symmetrised_negative_cosine():
    # so the loop's SGD rate and decay (lightly's CIFAR-10 benchmark) mean what they do there
    from lightly.loss import NegativeCosineSimilarity

    g = torch.Generator().manual_seed(1)
    ours = [torch.randn(4, 6, generator=g).requires_grad_() for _ in range(2)]
    theirs = [t.detach().clone().requires_grad_() for t in ours]
    z0, z1 = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g)
    tiny_byol().loss(ours[0], ours[1], z0, z1).backward()
    crit = NegativeCosineSimilarity()
    (0.5 * (crit(theirs[0], z1) + crit(theirs[1], z0))).backward()
    for a, b in zip(ours, theirs, strict=True):
        assert torch.allclose(a.grad, b.grad, atol=1e-7)


def test_defaults_are_lightlys():
    method = BYOL(tiny_backbone(), 8)
    assert (method.momentum, method.momentum_end, method.concat_views) == (0.99, 0.99, False)
    assert method.projection.layers[0].out_features == 1024
    assert method.prediction.layers[-1].out_features == 256


def test_targets_get_no_gradient():
    p0, p1, z0, z1 = (torch.randn(3, 4, requires_grad=True) for _ in range(4))
    tiny_byol().loss(p0, p1, z0, z1).backward()
    assert p0.grad.abs().sum() > 0 and z0.grad is None and z1.grad is None


def test_cosine_momentum_schedule():
    assert cosine_momentum(0.0, 0.99) == pytest.approx(0.99)
    assert cosine_momentum(0.5, 0.99) == pytest.approx(0.995)
    assert cosine_momentum(1.0, 0.99) == pytest.approx(1.0)
    assert cosine_momentum(0.25, 0.99) == pytest.approx(1 - 0.01 * (math.cos(math.pi / 4) + 1) / 2)


@pytest.mark.parametrize("progress", [0.0, 0.3])
def test_after_step_moves_target_towards_online_with_the_scheduled_momentum(progress):
    method = tiny_byol(momentum=0.9, momentum_end=1.0)  # the paper's rising schedule
    with torch.no_grad():
        for p in method.parameters():
            if p.requires_grad:
                p.add_(0.5)
    pairs = [
        (method.backbone, method.backbone_momentum),
        (method.projection, method.projection_momentum),
    ]
    before = [[p.clone() for p in t.parameters()] for _, t in pairs]
    method.after_step(progress)
    tau = cosine_momentum(progress, 0.9)
    for (online, target), old in zip(pairs, before, strict=True):
        for o, t_old, t_new in zip(online.parameters(), old, target.parameters(), strict=True):
            assert torch.allclose(t_new, tau * t_old + (1 - tau) * o, atol=1e-6)


def test_views_are_the_papers_asymmetric_pair():
    first, second = BYOL.view_specs(224)
    assert (first.blur, first.solarize) == (1.0, 0.0)
    assert (second.blur, second.solarize) == (0.1, 0.2)
    assert (first.brightness, first.contrast, first.saturation, first.hue) == (0.4, 0.4, 0.2, 0.1)
    # at CIFAR scale without blur (lightly's CIFAR-10 benchmark, solo-learn asymmetric.yaml)
    first, second = BYOL.view_specs(32)
    assert (first.blur, second.blur, first.solarize, second.solarize) == (0.0, 0.0, 0.0, 0.2)


def test_option_errors():
    with pytest.raises(SslsegError, match="momentum"):
        tiny_byol(momentum=1.1)
    with pytest.raises(SslsegError, match="2 views"):
        tiny_byol().training_step([torch.randn(2, 3, 8, 8)] * 3)
