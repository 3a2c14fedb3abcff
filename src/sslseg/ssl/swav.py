"""SwAV (Caron, Misra, Mairal, Goyal, Bojanowski, Joulin, 2020, "Unsupervised Learning of
Visual Features by Contrasting Cluster Assignments", NeurIPS, arXiv:2006.09882).

Each view's normalised projection ``z`` is scored against K unit-norm prototypes ``C``;
codes ``Q`` are computed from one view's scores by the Sinkhorn-Knopp algorithm (equal
partition of the batch among prototypes, entropy ``epsilon``, 3 iterations; eq. 3 and
Algorithm 1), and each view predicts the other's codes: the swapped cross-entropy
``-sum_k q_k log softmax(z.C / t)_k`` (eq. 2), lightly's ``SwaVLoss`` (whose ``sinkhorn``
gathers the scores of every DDP process, as the paper does across GPUs). Prototypes are
re-normalised before every step (as the official code does) and can be frozen for the first
``freeze_prototypes_steps`` steps; the default 0 is lightly's (``SwaVPrototypes`` and its
CIFAR-10 benchmark). The official 313 iterations are "one epoch" of ImageNet at batch 4096;
solo-learn's CIFAR recipe freezes for 2 epochs, i.e. ``2 x steps per epoch`` here (the method
does not know the epoch length). The prototypes and the step count are in ``state_dict``.

Freezing gives the prototypes a zero gradient rather than switching their ``requires_grad``
off (lightly's ``n_steps_frozen_prototypes``), because DDP needs every trainable parameter to
take part in every step. With SGD or LARS the weight decay then only shrinks them, which the
per-step normalisation undoes; with Adam's coupled weight decay the frozen prototypes can
drift in direction.

Defaults for small images: 2048-d hidden and 128-d output (paper), 512 prototypes (lightly's
CIFAR-10 benchmark; 3000 on ImageNet), t = 0.1, epsilon = 0.05, 3 Sinkhorn iterations
(paper); two crops with scale (0.14, 1) and the SimCLR colour distortion, at most
:data:`~sslseg.augment.views.SMALL_SIDE` px at strength 0.5 without blur (lightly's CIFAR-10
benchmark, ``SwaVTransform(crop_min_scales=[0.14], cj_strength=0.5, gaussian_blur=0)``). The paper's
multi-crop (2x224 + 6x96 px) and queue (for batches < 256) are not used: extra views given by
a view policy are treated as low-resolution crops, which are predicted but do not produce
codes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from lightly.loss import SwaVLoss
from lightly.models.modules import SwaVProjectionHead, SwaVPrototypes
from torch import Tensor, nn

from sslseg.augment.views import ViewSpec, simclr_specs
from sslseg.devices import full_precision
from sslseg.errors import SslsegError
from sslseg.ssl.base import Method


def _gate(p: Tensor, open_: bool) -> Tensor:
    """``p`` itself, or the same values with a zero gradient (still part of the graph)."""
    return p if open_ else p.detach() + 0.0 * p


class SwAV(Method):
    """SwAV: backbone + projector + prototypes, Sinkhorn codes, swapped prediction.

    ``temperature``: softmax t (0.1). ``n_prototypes``: K (512). ``hidden_dim``/``out_dim``:
    projector widths (2048 / 128). ``sinkhorn_iterations`` (3) / ``sinkhorn_epsilon`` (0.05).
    ``freeze_prototypes_steps``: steps with fixed prototypes (0, lightly). ``concat_views``: the
    high-resolution views through the network as one batch.
    """

    name = "swav"
    paper = "Caron et al. 2020, SwAV, arXiv:2006.09882"

    def __init__(
        self,
        backbone: nn.Module,
        feature_dim: int,
        *,
        temperature: float = 0.1,
        n_prototypes: int = 512,
        hidden_dim: int = 2048,
        out_dim: int = 128,
        sinkhorn_iterations: int = 3,
        sinkhorn_epsilon: float = 0.05,
        freeze_prototypes_steps: int = 0,
        concat_views: bool = True,
        gather_distributed: bool = True,
    ) -> None:
        super().__init__(backbone, feature_dim)
        if not temperature > 0:
            raise SslsegError(f"config: temperature: must be > 0, got {temperature}")
        if n_prototypes < 2:
            raise SslsegError(f"config: n_prototypes: must be at least 2, got {n_prototypes}")
        if not sinkhorn_epsilon > 0 or sinkhorn_iterations < 1:
            raise SslsegError(
                "config: sinkhorn_epsilon must be > 0 and sinkhorn_iterations "
                f">= 1, got {sinkhorn_epsilon} and {sinkhorn_iterations}"
            )
        if freeze_prototypes_steps < 0:
            raise SslsegError(
                f"config: freeze_prototypes_steps: must be >= 0, got {freeze_prototypes_steps}"
            )
        self.projection = SwaVProjectionHead(feature_dim, hidden_dim, out_dim)
        self.prototypes = SwaVPrototypes(out_dim, n_prototypes)
        with torch.no_grad():
            self.prototypes.normalize()
        self.criterion = SwaVLoss(
            temperature=temperature,
            sinkhorn_iterations=sinkhorn_iterations,
            sinkhorn_epsilon=sinkhorn_epsilon,
            sinkhorn_gather_distributed=gather_distributed,
        )
        self.freeze_prototypes_steps = freeze_prototypes_steps
        self.concat_views = concat_views
        # a Python int (saved through get_extra_state): no device sync to read it each step
        self.steps_done = 0

    @classmethod
    def view_specs(cls, size: int) -> list[ViewSpec]:
        """Two crops with scale (0.14, 1) (the paper's high-resolution crops) and SimCLR's
        colour distortion by size (:func:`~sslseg.augment.views.simclr_specs`: above
        ``SMALL_SIDE`` px strength 1.0 and blur 0.5, at or below it strength 0.5, no blur)."""
        return [replace(s, scale=(0.14, 1.0)) for s in simclr_specs(size)]

    def get_extra_state(self) -> Any:
        return {"steps_done": self.steps_done}

    def set_extra_state(self, state: Any) -> None:
        self.steps_done = int(state["steps_done"])

    @property
    def prototypes_frozen(self) -> bool:
        return self.steps_done < self.freeze_prototypes_steps

    def scores(self, z: Tensor) -> Tensor:
        """``z . C`` for normalised projections ``z`` (prototype gradient zero while frozen)."""
        layer = self.prototypes.heads[0]
        trainable = not self.prototypes_frozen
        bias = None if layer.bias is None else _gate(layer.bias, trainable)
        return F.linear(z, _gate(layer.weight, trainable), bias)

    def _project(self, views: list[Tensor]) -> list[Tensor]:
        if self.concat_views and len(views) > 1:
            z = self.projection(self.backbone(torch.cat(views)).flatten(1))
            return list(F.normalize(z, dim=1).chunk(len(views)))
        return [F.normalize(self.projection(self.backbone(v).flatten(1)), dim=1) for v in views]

    def training_step(self, views: list[Tensor]) -> Tensor:
        if len(views) < 2:
            raise SslsegError(f"swav: needs at least 2 views per image, got {len(views)}")
        with torch.no_grad():
            self.prototypes.normalize()
        high = self._project(views[:2])
        low = self._project(views[2:]) if views[2:] else []
        # fp32 from the prototype scores on: Sinkhorn exponentiates scores / 0.05
        with full_precision(high[0]):
            high = [self.scores(z.float()) for z in high]
            low = [self.scores(z.float()) for z in low]
            # lightly returns a 1-element tensor; the loop expects a scalar
            return self.criterion(high, low).reshape(())

    def after_step(self, progress: float) -> None:
        self.steps_done += 1
