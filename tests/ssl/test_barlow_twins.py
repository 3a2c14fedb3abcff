import pytest
import torch
from tiny import tiny_backbone
from torch import nn

from sslseg.errors import SslsegError
from sslseg.ssl.barlow_twins import BarlowTwins


def tiny_barlow(**options) -> BarlowTwins:
    torch.manual_seed(0)
    backbone = tiny_backbone()
    return BarlowTwins(backbone, 8, **{"hidden_dim": 16, "out_dim": 6, **options})


def _barlow_by_hand(z0, z1, lam):
    """Barlow Twins eq. (1)-(2): standardise each unit over the batch (biased std, as
    ``batch_norm``), C_ij = sum_b a_bi b_bj / N, sum_i (1 - C_ii)^2 + lam sum_{i!=j} C_ij^2."""
    z0, z1 = z0.double(), z1.double()
    n, d = z0.shape

    def standardise(z):
        cols = []
        for j in range(d):
            col = [float(z[b, j]) for b in range(n)]
            mean = sum(col) / n
            std = (sum((x - mean) ** 2 for x in col) / n + 1e-5) ** 0.5
            cols.append([(x - mean) / std for x in col])
        return cols  # d lists of n

    a, b = standardise(z0), standardise(z1)
    loss = 0.0
    for i in range(d):
        for j in range(d):
            c = sum(a[i][k] * b[j][k] for k in range(n)) / n
            loss += (1 - c) ** 2 if i == j else lam * c**2
    return loss


@pytest.mark.parametrize("lam", [5e-3, 0.5])
def test_loss_equals_the_cross_correlation_formula(lam):
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(7, 4, generator=g), torch.randn(7, 4, generator=g)
    method = tiny_barlow(lambda_param=lam)
    assert float(method.criterion(z0, z1)) == pytest.approx(_barlow_by_hand(z0, z1, lam), rel=1e-5)


def test_identical_decorrelated_views_cost_almost_nothing():
    # orthogonal columns of mean 0: C is the identity
    z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    assert float(tiny_barlow().criterion(z, z.clone())) == pytest.approx(0.0, abs=1e-4)


def test_projector_layers():
    linears = [m for m in tiny_barlow().projection.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(8, 16), (16, 6)]
    linears = [
        m for m in tiny_barlow(projection_layers=3).projection.modules() if isinstance(m, nn.Linear)
    ]
    assert len(linears) == 3
    with pytest.raises(SslsegError, match="lambda_param"):
        tiny_barlow(lambda_param=-1)
