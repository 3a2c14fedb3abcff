"""BYOL (Grill et al., 2020, "Bootstrap Your Own Latent: A New Approach to Self-Supervised
Learning", NeurIPS, arXiv:2006.07733).

An online network (backbone, projector, predictor) predicts the projection of the other view
made by a target network (backbone, projector) that is an exponential moving average of the
online one, ``xi <- tau xi + (1 - tau) theta`` (section 3.1), with
``tau = 1 - (1 - tau_base) (cos(pi k / K) + 1) / 2`` rising to 1 over the K training steps
(section 3.2). The loss of one direction is ``||p/|p| - z'/|z'| ||^2 = 2 - 2 cos(p, z')`` (eq. 2),
symmetrised over the two views (eq. 3). Here it is ``1 - cos``, half of eq. 2, averaged over
the two directions: the gradient of lightly's ``NegativeCosineSimilarity`` as its examples use
it, so that the loop's SGD learning rate and weight decay (lightly's CIFAR-10 benchmark: 0.06,
5e-4) mean what they mean there; with eq. 2's scale the same step needs half the rate and twice
the decay. The target network is a submodule without gradients, so it is in ``state_dict`` and
in every checkpoint; the exported backbone is the online one.

Defaults are lightly's (its BYOL example and CIFAR-10 benchmark), which trained better than
the paper's at this project's budget (docs/methods.md, "BYOL diagnosis"): 1024-d hidden and
256-d output heads (paper 4096), a constant target momentum 0.99 (paper 0.996 rising to 1 on a
cosine; set ``momentum_end`` for that), and each view through the networks on its own, so batch
norm sees one view at a time (``concat_views=false``, as lightly's examples and solo-learn).
Views: the paper's asymmetric pair (table 6: blur p = 1.0 / 0.1, solarisation p = 0 / 0.2);
at most :data:`~sslseg.augment.views.SMALL_SIDE` px without blur, as lightly's CIFAR-10
benchmark (``BYOLView1Transform(gaussian_blur=0.0)``, ``BYOLView2Transform(gaussian_blur=0.0)``)
and solo-learn's ``asymmetric.yaml`` CIFAR views.
"""

from __future__ import annotations

import copy
import math

import torch
from lightly.loss import NegativeCosineSimilarity
from lightly.models.modules import BYOLPredictionHead, BYOLProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from torch import Tensor, nn

from sslseg.augment.views import ViewSpec, is_small, paper_sigma
from sslseg.devices import full_precision
from sslseg.errors import SslsegError
from sslseg.ssl.base import Method


def cosine_momentum(progress: float, start: float, end: float = 1.0) -> float:
    """BYOL's target decay at ``progress`` = k / K: ``end - (end - start)(cos(pi k/K) + 1)/2``."""
    progress = min(max(progress, 0.0), 1.0)
    return end - (end - start) * (math.cos(math.pi * progress) + 1) / 2


def byol_specs(size: int) -> list[ViewSpec]:
    """BYOL's two views at side ``size`` (also Barlow Twins'): see :meth:`BYOL.view_specs`."""
    blur = (0.0, 0.0) if is_small(size) else (1.0, 0.1)
    common = dict(
        size=size, brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1, sigma=paper_sigma(size)
    )
    return [
        ViewSpec(**common, blur=blur[0], solarize=0.0),
        ViewSpec(**common, blur=blur[1], solarize=0.2),
    ]


class BYOL(Method):
    """BYOL: online backbone + projector + predictor, momentum target, 1 - cos.

    ``momentum``: tau_base (0.99). ``momentum_end``: tau at the last step (0.99: constant, as
    lightly; the paper's 1.0 raises it on a cosine). ``hidden_dim``/``out_dim``: projector and
    predictor widths (1024 / 256, lightly; paper 4096 / 256). ``concat_views``: both views
    through each network as one batch (off: one view at a time, as lightly and solo-learn).
    """

    name = "byol"
    paper = "Grill et al. 2020, BYOL, arXiv:2006.07733"

    def __init__(
        self,
        backbone: nn.Module,
        feature_dim: int,
        *,
        momentum: float = 0.99,
        momentum_end: float = 0.99,
        hidden_dim: int = 1024,
        out_dim: int = 256,
        concat_views: bool = False,
    ) -> None:
        super().__init__(backbone, feature_dim)
        if not 0 <= momentum <= momentum_end <= 1:
            raise SslsegError(
                f"config: momentum: need 0 <= momentum <= momentum_end <= 1, got "
                f"{momentum} and {momentum_end}"
            )
        self.projection = BYOLProjectionHead(feature_dim, hidden_dim, out_dim)
        self.prediction = BYOLPredictionHead(out_dim, hidden_dim, out_dim)
        self.backbone_momentum = copy.deepcopy(backbone)
        self.projection_momentum = copy.deepcopy(self.projection)
        deactivate_requires_grad(self.backbone_momentum)
        deactivate_requires_grad(self.projection_momentum)
        self.criterion = NegativeCosineSimilarity()
        self.momentum = momentum
        self.momentum_end = momentum_end
        self.concat_views = concat_views

    @classmethod
    def view_specs(cls, size: int) -> list[ViewSpec]:
        """BYOL's asymmetric pair (table 6): crop (0.08, 1), flip, jitter (0.4, 0.4, 0.2, 0.1)
        with p = 0.8, greyscale 0.2, solarisation 0.0 / 0.2; blur 1.0 / 0.1 above
        ``SMALL_SIDE`` px (sigma scaled from 224 px), none at or below it."""
        return byol_specs(size)

    def _encode(self, backbone: nn.Module, head: nn.Module, views: list[Tensor]) -> list[Tensor]:
        if self.concat_views:
            return list(head(backbone(torch.cat(views)).flatten(1)).chunk(len(views)))
        return [head(backbone(v).flatten(1)) for v in views]

    def loss(self, p0: Tensor, p1: Tensor, z0: Tensor, z1: Tensor) -> Tensor:
        """Mean over both directions of ``1 - cos(p_i, z_j)`` (targets are not differentiated)."""
        with full_precision(p0):
            d01 = self.criterion(p0.float(), z1.detach().float())  # = -mean cos
            d10 = self.criterion(p1.float(), z0.detach().float())
        return 1 + 0.5 * (d01 + d10)

    def training_step(self, views: list[Tensor]) -> Tensor:
        if len(views) != 2:
            raise SslsegError(f"byol: needs exactly 2 views per image, got {len(views)}")
        if self.concat_views:
            z = self.projection(self.backbone(torch.cat(views)).flatten(1))
            p0, p1 = self.prediction(z).chunk(2)
        else:
            p0, p1 = (
                self.prediction(z) for z in self._encode(self.backbone, self.projection, views)
            )
        with torch.no_grad():
            z0, z1 = self._encode(self.backbone_momentum, self.projection_momentum, views)
        return self.loss(p0, p1, z0, z1)

    @torch.no_grad()
    def after_step(self, progress: float) -> None:
        tau = cosine_momentum(progress, self.momentum, self.momentum_end)
        update_momentum(self.backbone, self.backbone_momentum, tau)
        update_momentum(self.projection, self.projection_momentum, tau)
