"""Barlow Twins (Zbontar, Jing, Misra, LeCun, Deny, 2021, "Barlow Twins: Self-Supervised
Learning via Redundancy Reduction", ICML, arXiv:2103.03230).

The projections of the two views are standardised along the batch, their cross-correlation
``C_ij = sum_b z0_bi z1_bj / N`` is computed, and the loss
``sum_i (1 - C_ii)^2 + lambda sum_{i != j} C_ij^2`` (eq. 1-2, Algorithm 1) pulls it towards
the identity: invariance on the diagonal, redundancy reduction off it. Under DDP both the
standardisation and ``C`` use the global batch, as the official code does (its ``bn`` is a
SyncBatchNorm and ``C`` is summed over all GPUs before dividing by the global batch): the
loss of two processes equals that of one process with both halves. lightly's
``BarlowTwinsLoss`` (which this equals on one process) averages ``C`` over processes but
standardises each process's projections with its own statistics. No extra state besides the
projector.

Defaults for small images: lambda = 5e-3 (paper), a 2-layer projector 2048-2048 (lightly's
and solo-learn's CIFAR-10 recipes; the paper's ImageNet projector has 3 layers of 8192, which
``projection_layers=3, hidden_dim=8192, out_dim=8192`` gives), the paper's views (BYOL's
asymmetric pair: blur 1.0 / 0.1, solarisation 0.0 / 0.2; at most
:data:`~sslseg.augment.views.SMALL_SIDE` px without blur, as lightly's Barlow Twins example and
CIFAR-10 benchmark and solo-learn's CIFAR recipe).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from lightly.models.modules import BarlowTwinsProjectionHead
from lightly.models.modules.heads import ProjectionHead
from torch import Tensor, nn
from torch.distributed import nn as dist_nn

from sslseg.augment.views import ViewSpec
from sslseg.devices import full_precision
from sslseg.errors import SslsegError
from sslseg.ssl.base import Method
from sslseg.ssl.byol import byol_specs


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class BarlowTwinsLoss(nn.Module):
    """``sum_i (1 - C_ii)^2 + lambda sum_{i != j} C_ij^2`` (Algorithm 1) over the global batch.

    Each projection unit is standardised with the mean and biased variance of the batch
    (``eps`` 1e-5, as ``batch_norm``); with ``gather_distributed`` under DDP the sums behind
    the mean, the variance and ``C`` run over every process (a differentiable all-reduce, so
    with DDP's averaged gradients the update equals that of the whole batch on one process).
    """

    def __init__(self, lambda_param: float = 5e-3, gather_distributed: bool = True) -> None:
        super().__init__()
        self.lambda_param = lambda_param
        self.gather_distributed = gather_distributed

    def _sum(self, x: Tensor) -> Tensor:
        if self.gather_distributed and _distributed():
            return dist_nn.all_reduce(x)
        return x

    def _standardise(self, z: Tensor, n: float) -> Tensor:
        mean = self._sum(z.sum(0)) / n
        centred = z - mean
        var = self._sum(centred.pow(2).sum(0)) / n
        return centred / torch.sqrt(var + 1e-5)

    def forward(self, z0: Tensor, z1: Tensor) -> Tensor:
        n = float(len(z0))
        if self.gather_distributed and _distributed():
            n *= dist.get_world_size()  # every process has the same batch size (drop_last)
        c = self._sum(self._standardise(z0, n).T @ self._standardise(z1, n)) / n
        on_diag = (torch.diagonal(c) - 1).pow(2).sum()
        off_diag = c.pow(2).sum() - torch.diagonal(c).pow(2).sum()
        return on_diag + self.lambda_param * off_diag


class BarlowTwins(Method):
    """Barlow Twins: backbone + projector + cross-correlation loss.

    ``lambda_param``: weight of the off-diagonal term (5e-3). ``hidden_dim``/``out_dim``:
    projector widths (2048 / 2048). ``projection_layers``: 2 or 3. ``concat_views``: both
    views through the network as one batch (the loss standardises each view on its own).
    """

    name = "barlow_twins"
    paper = "Zbontar et al. 2021, Barlow Twins, arXiv:2103.03230"

    def __init__(
        self,
        backbone: nn.Module,
        feature_dim: int,
        *,
        lambda_param: float = 5e-3,
        hidden_dim: int = 2048,
        out_dim: int = 2048,
        projection_layers: int = 2,
        concat_views: bool = True,
        gather_distributed: bool = True,
    ) -> None:
        super().__init__(backbone, feature_dim)
        if not lambda_param >= 0:
            raise SslsegError(f"config: lambda_param: must be >= 0, got {lambda_param}")
        if projection_layers == 3:
            self.projection: nn.Module = BarlowTwinsProjectionHead(feature_dim, hidden_dim, out_dim)
        elif projection_layers == 2:
            self.projection = ProjectionHead(
                [
                    (feature_dim, hidden_dim, nn.BatchNorm1d(hidden_dim), nn.ReLU()),
                    (hidden_dim, out_dim, None, None),
                ]
            )
        else:
            raise SslsegError(f"config: projection_layers: must be 2 or 3, got {projection_layers}")
        self.criterion = BarlowTwinsLoss(
            lambda_param=lambda_param, gather_distributed=gather_distributed
        )
        self.concat_views = concat_views

    @classmethod
    def view_specs(cls, size: int) -> list[ViewSpec]:
        """The paper's views (BYOL's, :func:`sslseg.ssl.byol.byol_specs`): jitter
        (0.4, 0.4, 0.2, 0.1) p 0.8, greyscale 0.2, solarisation 0.0 / 0.2, blur 1.0 / 0.1
        above ``SMALL_SIDE`` px and none at or below it."""
        return byol_specs(size)

    def training_step(self, views: list[Tensor]) -> Tensor:
        if len(views) != 2:
            raise SslsegError(f"barlow_twins: needs exactly 2 views per image, got {len(views)}")
        if self.concat_views:
            z0, z1 = self.projection(self.backbone(torch.cat(views)).flatten(1)).chunk(2)
        else:
            z0, z1 = (self.projection(self.backbone(v).flatten(1)) for v in views)
        # fp32: the standardisation and the D x D sums lose too much in bf16
        with full_precision(z0):
            return self.criterion(z0.float(), z1.float())
