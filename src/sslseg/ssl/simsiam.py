"""SimSiam (Chen, He, 2021, "Exploring Simple Siamese Representation Learning", CVPR,
arXiv:2011.10566).

One network (backbone + projector f) and a predictor h; with ``p = h(f(x))`` and
``z = f(x)``, the loss is ``D(p1, stopgrad(z2))/2 + D(p2, stopgrad(z1))/2`` where
``D(p, z) = -cos(p, z)`` (eqs. 1-4, Algorithm 1), computed with lightly's
``NegativeCosineSimilarity``. The stop-gradient is what prevents collapse (section 4.1);
there is no momentum encoder and no extra state besides the two heads.

Defaults for small images (the paper's CIFAR-10 setting, appendix D, as in lightly's CIFAR-10
benchmark): a 2-layer projector 2048-2048 with BN on both layers (output BN without affine,
as in the official code), predictor bottleneck 512; ``projection_layers=3`` gives the
ImageNet projector (lightly's ``SimSiamProjectionHead``). Views: MoCo v2's, which the paper
uses; at most :data:`~sslseg.augment.views.SMALL_SIDE` px without blur, as lightly's CIFAR-10
benchmark (``SimSiamTransform(input_size=32, gaussian_blur=0.0)``).
"""

from __future__ import annotations

import torch
from lightly.loss import NegativeCosineSimilarity
from lightly.models.modules import SimSiamPredictionHead, SimSiamProjectionHead
from lightly.models.modules.heads import ProjectionHead
from torch import Tensor, nn

from sslseg.augment.views import ViewSpec, is_small, paper_sigma
from sslseg.devices import full_precision
from sslseg.errors import SslsegError
from sslseg.ssl.base import Method


class SimSiam(Method):
    """SimSiam: backbone + projector + predictor, negative cosine with stop-gradient.

    ``hidden_dim``/``out_dim``: projector widths (2048 / 2048). ``pred_hidden_dim``: predictor
    bottleneck (512). ``projection_layers``: 2 (CIFAR, paper appendix D) or 3 (ImageNet).
    ``concat_views``: both views through the network as one batch.
    """

    name = "simsiam"
    paper = "Chen & He 2021, SimSiam, arXiv:2011.10566"

    def __init__(
        self,
        backbone: nn.Module,
        feature_dim: int,
        *,
        hidden_dim: int = 2048,
        out_dim: int = 2048,
        pred_hidden_dim: int = 512,
        projection_layers: int = 2,
        concat_views: bool = True,
    ) -> None:
        super().__init__(backbone, feature_dim)
        if projection_layers == 3:
            self.projection: nn.Module = SimSiamProjectionHead(feature_dim, hidden_dim, out_dim)
        elif projection_layers == 2:
            self.projection = ProjectionHead(
                [
                    (feature_dim, hidden_dim, nn.BatchNorm1d(hidden_dim), nn.ReLU()),
                    (hidden_dim, out_dim, nn.BatchNorm1d(out_dim, affine=False), None),
                ]
            )
        else:
            raise SslsegError(f"config: projection_layers: must be 2 or 3, got {projection_layers}")
        self.prediction = SimSiamPredictionHead(out_dim, pred_hidden_dim, out_dim)
        self.criterion = NegativeCosineSimilarity()
        self.concat_views = concat_views

    @classmethod
    def view_specs(cls, size: int) -> list[ViewSpec]:
        """MoCo v2's views: crop (0.2, 1), jitter (0.4, 0.4, 0.4, 0.1) p 0.8, grey 0.2; blur
        p = 0.5 above ``SMALL_SIDE`` px (sigma scaled from 224 px), none at or below it."""
        spec = ViewSpec(
            size=size,
            scale=(0.2, 1.0),
            brightness=0.4,
            contrast=0.4,
            saturation=0.4,
            hue=0.1,
            blur=0.0 if is_small(size) else 0.5,
            sigma=paper_sigma(size),
        )
        return [spec, spec]

    def loss(self, p0: Tensor, p1: Tensor, z0: Tensor, z1: Tensor) -> Tensor:
        """``D(p0, sg(z1))/2 + D(p1, sg(z0))/2`` with ``D = -cos`` (Algorithm 1)."""
        with full_precision(p0):
            return 0.5 * (
                self.criterion(p0.float(), z1.detach().float())
                + self.criterion(p1.float(), z0.detach().float())
            )

    def training_step(self, views: list[Tensor]) -> Tensor:
        if len(views) != 2:
            raise SslsegError(f"simsiam: needs exactly 2 views per image, got {len(views)}")
        if self.concat_views:
            z = self.projection(self.backbone(torch.cat(views)).flatten(1))
            p0, p1 = self.prediction(z).chunk(2)
            z0, z1 = z.chunk(2)
        else:
            z0, z1 = (self.projection(self.backbone(v).flatten(1)) for v in views)
            p0, p1 = self.prediction(z0), self.prediction(z1)
        return self.loss(p0, p1, z0, z1)
