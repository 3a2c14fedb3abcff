"""SimCLR (Chen, Kornblith, Norouzi, Hinton, 2020, "A Simple Framework for Contrastive
Learning of Visual Representations", ICML, arXiv:2002.05709).

Two views of every image go through the backbone and a 2-layer MLP projection head
``z = W2 ReLU(BN(W1 h))`` (section 2.1; BN as in the official implementation); NT-Xent with
temperature ``tau`` (eq. 1, averaged over all 2N anchors, eq. 2.1 of the seed study) is lightly's
``NTXentLoss``, which under DDP gathers the projections of every process so that each anchor
sees the negatives of the global batch (the paper's "global" contrast over all cores).
"""

from __future__ import annotations

import torch
from lightly.loss import NTXentLoss
from lightly.models.modules import SimCLRProjectionHead
from torch import Tensor, nn

from sslseg.devices import full_precision
from sslseg.errors import SslsegError
from sslseg.ssl.base import Method


class SimCLR(Method):
    """SimCLR: backbone + projection head + NT-Xent.

    ``temperature``: NT-Xent tau (0.5, the paper's choice for batch sizes of a few hundred,
    table 5). ``hidden_dim``: projection hidden width (default: the backbone's feature width,
    as in the paper). ``out_dim``: projection output (128, paper). ``concat_views``: run both
    views through the backbone as one batch of 2N (the official implementation; BN statistics
    over both views, and one larger forward is cheaper than two).
    """

    name = "simclr"
    paper = "Chen et al. 2020, SimCLR, arXiv:2002.05709"

    def __init__(
        self,
        backbone: nn.Module,
        feature_dim: int,
        *,
        temperature: float = 0.5,
        hidden_dim: int | None = None,
        out_dim: int = 128,
        concat_views: bool = True,
        gather_distributed: bool = True,
    ) -> None:
        super().__init__(backbone, feature_dim)
        if not temperature > 0:
            raise SslsegError(f"config: temperature: must be > 0, got {temperature}")
        self.projection = SimCLRProjectionHead(feature_dim, hidden_dim or feature_dim, out_dim)
        self.criterion = NTXentLoss(temperature=temperature, gather_distributed=gather_distributed)
        self.temperature = temperature
        self.concat_views = concat_views

    def embed(self, views: list[Tensor]) -> list[Tensor]:
        """Projections ``z`` of each view."""
        if self.concat_views:
            z = self.projection(self.backbone(torch.cat(views)).flatten(1))
            return list(z.chunk(len(views)))
        return [self.projection(self.backbone(v).flatten(1)) for v in views]

    def training_step(self, views: list[Tensor]) -> Tensor:
        if len(views) != 2:
            raise SslsegError(f"simclr: needs exactly 2 views per image, got {len(views)}")
        z0, z1 = self.embed(views)
        # the loss in fp32: the logits' softmax over 2N-1 entries is sensitive to bf16 rounding
        with full_precision(z0):
            return self.criterion(z0.float(), z1.float())
