import math

import pytest
import torch
from torch import nn

from sslseg.errors import SslsegError
from sslseg.ssl.registry import REGISTRY, build_method
from sslseg.ssl.simclr import SimCLR


def _nt_xent_by_hand(z0: torch.Tensor, z1: torch.Tensor, tau: float) -> float:
    """Eq. (1) of SimCLR averaged over all 2N anchors, with plain Python loops."""
    z = [v / v.norm() for v in torch.cat([z0, z1]).double()]
    n = len(z0)
    total = 0.0
    for i in range(2 * n):
        positive = (i + n) % (2 * n)
        denominator = sum(math.exp(float(z[i] @ z[k]) / tau) for k in range(2 * n) if k != i)
        total += -math.log(math.exp(float(z[i] @ z[positive]) / tau) / denominator)
    return total / (2 * n)


def test_nt_xent_closed_form_on_orthogonal_pairs():
    # two images, each view equal to its pair: s_pos = 1, the two negatives 0
    z = torch.eye(2)
    method = SimCLR(nn.Identity(), 2, temperature=0.5)
    loss = method.criterion(z, z.clone())
    assert float(loss) == pytest.approx(math.log(1 + 2 * math.exp(-2.0)), abs=1e-6)


@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0])
def test_nt_xent_equals_the_formula(tau):
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    method = SimCLR(nn.Identity(), 7, temperature=tau)
    assert float(method.criterion(z0, z1)) == pytest.approx(_nt_xent_by_hand(z0, z1, tau), rel=1e-5)


def test_projection_head_is_a_two_layer_mlp_with_relu():
    method = build_method("simclr", "resnet18", "cifar")
    linears = [m for m in method.projection.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(512, 512), (512, 128)]
    assert any(isinstance(m, nn.ReLU) for m in method.projection.modules())


def test_training_step_gives_gradients_to_backbone_and_head():
    method = build_method("simclr", "resnet18", "cifar", temperature=0.5)
    views = [torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)]
    loss = method.training_step(views)
    loss.backward()
    assert torch.isfinite(loss)
    assert method.backbone.conv1.weight.grad.abs().sum() > 0
    assert method.projection.layers[0].weight.grad.abs().sum() > 0


def test_registry_and_option_errors():
    assert REGISTRY["simclr"] is SimCLR
    with pytest.raises(SslsegError, match="unknown method 'nope'"):
        build_method("nope")
    with pytest.raises(SslsegError, match="no option momentum"):
        build_method("simclr", "resnet18", "cifar", momentum=0.99)
    with pytest.raises(SslsegError, match="temperature"):
        SimCLR(nn.Identity(), 4, temperature=0.0)
