"""The interface every self-supervised method implements.

A method is an ``nn.Module`` that owns its ``backbone`` (a torchvision ResNet with
``fc = Identity``) and everything else it needs — projection/prediction heads, momentum
encoder, queue, prototypes — as submodules, parameters or buffers, so that its
``state_dict`` is the whole training state besides the optimiser. The generic loop in
:mod:`sslseg.ssl.train` only calls:

- ``view_specs(size)`` (class method): the augmentation views the method expects at view
  side ``size`` (the CIFAR-scale recipe up to ``augment.views.SMALL_SIDE`` px, the paper's
  above it; ``docs/methods.md`` lists them with their sources);
- ``forward(views)`` → ``training_step(views)``: the scalar loss of one batch of views;
- ``after_step(progress)``: updates that follow the optimiser step (momentum encoder,
  queue), with ``progress`` in [0, 1] for schedules such as BYOL's cosine momentum.

``forward`` delegates to ``training_step`` so that DistributedDataParallel, which only
synchronises gradients of what runs inside its ``forward``, wraps any method unchanged.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from sslseg.augment.views import ViewSpec, simclr_specs


class Method(nn.Module):
    """Base class: a backbone plus whatever the method adds on top."""

    #: registry name, also written to the exported encoder's sidecar
    name: ClassVar[str] = ""
    #: paper the defaults come from (shown in ``sslseg pretrain --help`` and the docs)
    paper: ClassVar[str] = ""

    def __init__(self, backbone: nn.Module, feature_dim: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.feature_dim = feature_dim

    @classmethod
    def view_specs(cls, size: int) -> list[ViewSpec]:
        """The views one training step consumes (default: SimCLR's two views, by size)."""
        return simclr_specs(size)

    def training_step(self, views: list[Tensor]) -> Tensor:
        raise NotImplementedError

    def after_step(self, progress: float) -> None:
        """Called after every optimiser step; ``progress`` = finished steps / total steps."""

    def forward(self, views: list[Tensor]) -> Tensor:
        return self.training_step(views)
