"""Barlow Twins (Zbontar, Jing, Misra, LeCun, Deny, 2021, "Barlow Twins: Self-Supervised
Learning via Redundancy Reduction", ICML, arXiv:2103.03230).

The projections of the two views are standardised along the batch, their cross-correlation
``C_ij = sum_b z0_bi z1_bj / N`` is computed, and the loss
``sum_i (1 - C_ii)^2 + lambda sum_{i != j} C_ij^2`` (eq. 1-2, Algorithm 1) pulls it towards
the identity: invariance on the diagonal, redundancy reduction off it. It is lightly's
``BarlowTwinsLoss``, which under DDP averages ``C`` over processes (the paper's large batch
across GPUs). No extra state besides the projector.

Defaults for small images: lambda = 5e-3 (paper), a 2-layer projector 2048-2048 (lightly's
and solo-learn's CIFAR-10 recipes; the paper's ImageNet projector has 3 layers of 8192, which
``projection_layers=3, hidden_dim=8192, out_dim=8192`` gives), the paper's views (BYOL's
asymmetric pair: blur 1.0 / 0.1, solarisation 0.0 / 0.2).
"""

from __future__ import annotations

import torch
from lightly.loss import BarlowTwinsLoss
from lightly.models.modules import BarlowTwinsProjectionHead
from lightly.models.modules.heads import ProjectionHead
from torch import Tensor, nn

from sslseg.augment.views import ViewSpec
from sslseg.devices import full_precision
from sslseg.errors import SslsegError
from sslseg.ssl.base import Method


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
        """The paper's views (BYOL's): jitter (0.4, 0.4, 0.2, 0.1) p 0.8, greyscale 0.2,
        blur 1.0 / 0.1, solarisation 0.0 / 0.2."""
        common = dict(size=size, brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1)
        return [
            ViewSpec(**common, blur=1.0, solarize=0.0),
            ViewSpec(**common, blur=0.1, solarize=0.2),
        ]

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
