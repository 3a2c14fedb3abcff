"""Methods by name. Adding a method is one file in this package and one line here."""

from __future__ import annotations

import inspect
from typing import Any

from sslseg.backbones import build_backbone, feature_dim
from sslseg.errors import SslsegError
from sslseg.ssl.barlow_twins import BarlowTwins
from sslseg.ssl.base import Method
from sslseg.ssl.byol import BYOL
from sslseg.ssl.moco import MoCo
from sslseg.ssl.simclr import SimCLR
from sslseg.ssl.simsiam import SimSiam
from sslseg.ssl.swav import SwAV

REGISTRY: dict[str, type[Method]] = {
    "simclr": SimCLR,
    "moco": MoCo,
    "byol": BYOL,
    "simsiam": SimSiam,
    "swav": SwAV,
    "barlow_twins": BarlowTwins,
}


def method_options(cls: type[Method]) -> dict[str, Any]:
    """The keyword options a method takes, with their defaults."""
    params = inspect.signature(cls.__init__).parameters
    return {k: p.default for k, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def build_method(
    name: str, arch: str = "resnet18", stem: str = "imagenet", **options: Any
) -> Method:
    """A fresh method ``name`` on a randomly initialised ``arch`` backbone (a torchvision
    ResNet or a timm model, :func:`sslseg.backbones.build_backbone`).

    ``options`` are the method's keyword options (see :func:`method_options`); an unknown
    one is a config error.
    """
    if name not in REGISTRY:
        raise SslsegError(
            f"config: method: unknown method '{name}' (choose from {', '.join(REGISTRY)})"
        )
    cls = REGISTRY[name]
    accepted = method_options(cls)
    unknown = sorted(k for k in options if k not in accepted)
    if unknown:
        raise SslsegError(
            f"config: method_options: {name} has no option "
            f"{', '.join(unknown)} (it takes {', '.join(accepted) or 'none'})"
        )
    backbone = build_backbone(arch, stem)
    return cls(backbone, feature_dim(arch, backbone), **options)
