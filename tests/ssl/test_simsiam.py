import pytest
import torch
from lightly.models.modules import SimSiamProjectionHead
from tiny import tiny_backbone
from torch import nn

from sslseg.errors import SslsegError
from sslseg.ssl.simsiam import SimSiam


def tiny_simsiam(**options) -> SimSiam:
    torch.manual_seed(0)
    backbone = tiny_backbone()
    return SimSiam(
        backbone, 8, **{"hidden_dim": 16, "out_dim": 16, "pred_hidden_dim": 4, **options}
    )


def _negative_cosine_by_hand(p0, p1, z0, z1):
    """SimSiam eq. (2): D(p1, z2)/2 + D(p2, z1)/2, D = -cos, mean over the batch."""

    def d(p, z):
        return -sum(
            float(a @ b) / (float(a.norm()) * float(b.norm()))
            for a, b in zip(p.double(), z.double(), strict=True)
        ) / len(p)

    return 0.5 * d(p0, z1) + 0.5 * d(p1, z0)


def test_loss_equals_the_negative_cosine_formula():
    g = torch.Generator().manual_seed(0)
    p0, p1, z0, z1 = (torch.randn(6, 5, generator=g) for _ in range(4))
    method = tiny_simsiam()
    assert float(method.loss(p0, p1, z0, z1)) == pytest.approx(
        _negative_cosine_by_hand(p0, p1, z0, z1), rel=1e-5
    )
    assert float(method.loss(p0, p1, 2 * p1, 5 * p0)) == pytest.approx(-1.0, abs=1e-6)


def test_stop_gradient_on_the_projections():
    p0, p1, z0, z1 = (torch.randn(3, 4, requires_grad=True) for _ in range(4))
    tiny_simsiam().loss(p0, p1, z0, z1).backward()
    assert p0.grad.abs().sum() > 0 and p1.grad.abs().sum() > 0
    assert z0.grad is None and z1.grad is None


def test_training_step_matches_the_loss_of_its_own_projections():
    method = tiny_simsiam()
    views = [torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)]
    method.eval()  # BN with running statistics: the two forwards below see the same function
    loss = method.training_step(views)
    z0, z1 = (method.projection(method.backbone(v)) for v in views)
    expected = method.loss(method.prediction(z0), method.prediction(z1), z0, z1)
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)


def test_projector_depth_and_widths():
    linears = [m for m in tiny_simsiam().projection.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(8, 16), (16, 16)]
    assert isinstance(tiny_simsiam(projection_layers=3).projection, SimSiamProjectionHead)
    with pytest.raises(SslsegError, match="projection_layers"):
        tiny_simsiam(projection_layers=4)
