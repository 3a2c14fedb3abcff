"""MoCo v2 (He, Fan, Wu, Xie, Girshick, 2020, "Momentum Contrast for Unsupervised Visual
Representation Learning", CVPR, arXiv:1911.05722; Chen, Fan, Girshick, He, 2020, "Improved
Baselines with Momentum Contrastive Learning", arXiv:2003.04297).

A query encoder (backbone + 2-layer MLP head, MoCo v2's change) and a key encoder that is its
exponential moving average, ``theta_k <- m theta_k + (1 - m) theta_q`` (MoCo eq. 2, lightly's
``update_momentum``). Negatives come from a FIFO queue of past keys; the loss is InfoNCE
(MoCo eq. 1): ``-log exp(q.k+/t) / (exp(q.k+/t) + sum_queue exp(q.k_j/t))`` on L2-normalised
vectors. The queue and its pointer are buffers and the key encoder is a submodule, so they
are part of ``state_dict`` and of every checkpoint.

Defaults for small images (the CIFAR-10 benchmark of lightly, ResNet-18, batch 128: 512-d
hidden layer, momentum 0.99, queue of 4096 keys, symmetric loss as in the MoCo CIFAR-10 demo;
temperature 0.2 and the 128-d output of MoCo v2). The paper's ImageNet values (m = 0.999,
K = 65536, 2048-d hidden) are options; a 65536-key queue is larger than small datasets and
would hold several keys of the same image.

Under DDP the keys of every process are gathered before they are enqueued (as in the official
``concat_all_gather``), one view at a time, so the queue holds exactly what one process would
enqueue for the global batch; the official "shuffling BN" is not reproduced (it needs several
devices; lightly's and solo-learn's single-device CIFAR recipes omit it too).

Views by size (``docs/methods.md``): at most :data:`~sslseg.augment.views.SMALL_SIDE` px,
lightly's CIFAR-10 benchmark recipe for MoCo (its ``SimCLRTransform(cj_strength=0.5,
gaussian_blur=0.0)``: crop (0.08, 1), jitter (0.4, 0.4, 0.4, 0.1), no blur); larger, MoCo v2's
"aug+" (crop (0.2, 1), the same jitter, blur p = 0.5).
"""

from __future__ import annotations

import copy

import torch
import torch.distributed as dist
import torch.nn.functional as F
from lightly.models.modules import MoCoProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from torch import Tensor, nn

from sslseg.augment.views import ViewSpec, is_small, paper_sigma
from sslseg.devices import full_precision
from sslseg.errors import SslsegError
from sslseg.ssl.base import Method


def info_nce(q: Tensor, k: Tensor, queue: Tensor, temperature: float) -> Tensor:
    """MoCo's InfoNCE (eq. 1): positive ``q_i . k_i``, negatives ``q_i . queue_j``.

    ``q``, ``k``: ``N x D``; ``queue``: ``K x D`` (already normalised). Mean over the N queries.
    """
    with full_precision(q):
        q = F.normalize(q.float(), dim=1)
        k = F.normalize(k.float(), dim=1)
        positive = (q * k).sum(1, keepdim=True)
        negative = q @ queue.float().T
        logits = torch.cat([positive, negative], 1) / temperature
        # the positive is column 0 of every row
        return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long, device=q.device))


def gather_keys(keys: Tensor) -> Tensor:
    """The keys of every process, in rank order (this process's alone outside DDP)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return keys
    parts = [torch.empty_like(keys) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, keys.contiguous())
    return torch.cat(parts)


class MoCo(Method):
    """MoCo v2: query encoder, momentum key encoder, queue of negatives, InfoNCE.

    ``temperature``: InfoNCE t (0.2, MoCo v2). ``queue_size``: negatives K (4096, lightly's
    CIFAR-10 benchmark). ``momentum``: key-encoder m (0.99 for small data, as lightly's and
    solo-learn's CIFAR recipes; MoCo uses 0.999 on ImageNet, table 4 shows 0.99 close to it).
    ``hidden_dim``: head hidden width (default: the backbone's feature width). ``out_dim``:
    128 (MoCo v2). ``symmetric``: both views serve as query and as key, and both sets of keys
    are enqueued (twice the signal per step at the cost of two key forwards).
    ``concat_views``: both views through each encoder as one batch.
    """

    name = "moco"
    paper = "Chen et al. 2020, MoCo v2, arXiv:2003.04297 (MoCo: He et al., arXiv:1911.05722)"

    def __init__(
        self,
        backbone: nn.Module,
        feature_dim: int,
        *,
        temperature: float = 0.2,
        queue_size: int = 4096,
        momentum: float = 0.99,
        hidden_dim: int | None = None,
        out_dim: int = 128,
        symmetric: bool = True,
        concat_views: bool = True,
    ) -> None:
        super().__init__(backbone, feature_dim)
        if not temperature > 0:
            raise SslsegError(f"config: temperature: must be > 0, got {temperature}")
        if queue_size < 1:
            raise SslsegError(f"config: queue_size: must be at least 1, got {queue_size}")
        if not 0 <= momentum <= 1:
            raise SslsegError(f"config: momentum: must be in [0, 1], got {momentum}")
        self.projection = MoCoProjectionHead(feature_dim, hidden_dim or feature_dim, out_dim)
        self.backbone_momentum = copy.deepcopy(backbone)
        self.projection_momentum = copy.deepcopy(self.projection)
        deactivate_requires_grad(self.backbone_momentum)
        deactivate_requires_grad(self.projection_momentum)
        # random unit keys until real ones arrive (the official initialisation)
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, out_dim), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        self.temperature = temperature
        self.momentum = momentum
        self.symmetric = symmetric
        self.concat_views = concat_views
        self._pending: list[Tensor] = []

    @classmethod
    def view_specs(cls, size: int) -> list[ViewSpec]:
        """Colour jitter (0.4, 0.4, 0.4, 0.1) with p = 0.8, greyscale 0.2, and by size: at most
        ``SMALL_SIDE`` px crop (0.08, 1) and no blur (lightly's CIFAR-10 benchmark), larger
        MoCo v2's "aug+" (the official ``main_moco.py``): crop (0.2, 1), blur p = 0.5."""
        small = is_small(size)
        spec = ViewSpec(
            size=size,
            scale=(0.08 if small else 0.2, 1.0),
            brightness=0.4,
            contrast=0.4,
            saturation=0.4,
            hue=0.1,
            blur=0.0 if small else 0.5,
            sigma=paper_sigma(size),
        )
        return [spec, spec]

    def _encode(self, backbone: nn.Module, head: nn.Module, views: list[Tensor]) -> list[Tensor]:
        if self.concat_views and len(views) > 1:
            return list(head(backbone(torch.cat(views)).flatten(1)).chunk(len(views)))
        return [head(backbone(v).flatten(1)) for v in views]

    def training_step(self, views: list[Tensor]) -> Tensor:
        if len(views) != 2:
            raise SslsegError(f"moco: needs exactly 2 views per image, got {len(views)}")
        if self.symmetric:
            q0, q1 = self._encode(self.backbone, self.projection, views)
            with torch.no_grad():
                k0, k1 = self._encode(self.backbone_momentum, self.projection_momentum, views)
            loss = 0.5 * (
                info_nce(q0, k1, self.queue, self.temperature)
                + info_nce(q1, k0, self.queue, self.temperature)
            )
            keys = [k1, k0]
        else:
            (q0,) = self._encode(self.backbone, self.projection, views[:1])
            with torch.no_grad():
                (k1,) = self._encode(self.backbone_momentum, self.projection_momentum, views[1:])
            loss = info_nce(q0, k1, self.queue, self.temperature)
            keys = [k1]
        # enqueued in after_step: the queue is read by this step's backward pass
        self._pending = [F.normalize(k.detach().float(), dim=1) for k in keys]
        return loss

    @torch.no_grad()
    def enqueue(self, *keys: Tensor) -> None:
        """Write ``keys`` (all processes', each set gathered in rank order, then the sets in
        turn) at the pointer, wrapping around; advance it."""
        keys = torch.cat([gather_keys(k) for k in keys])
        size = self.queue.shape[0]
        keys = keys[-size:]  # a batch larger than the queue keeps its newest keys
        slots = (self.queue_ptr + torch.arange(len(keys), device=self.queue.device)) % size
        self.queue[slots] = keys.to(self.queue.dtype)
        self.queue_ptr.copy_((self.queue_ptr + len(keys)) % size)

    @torch.no_grad()
    def after_step(self, progress: float) -> None:
        update_momentum(self.backbone, self.backbone_momentum, self.momentum)
        update_momentum(self.projection, self.projection_momentum, self.momentum)
        if self._pending:
            self.enqueue(*self._pending)
            self._pending = []
