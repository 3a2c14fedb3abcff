"""The U-Net (segmentation_models_pytorch) on a ResNet or timm encoder; weights:
``sslseg.backbones``.

``resnet18`` / ``resnet50`` use smp's own ResNet encoders (torchvision key names); any other
arch is smp's ``tu-<name>`` encoder, which wraps timm's ``features_only`` model as
``model.encoder.model``, and takes a timm export through
:func:`sslseg.backbones.timm_features_state`.
"""

from __future__ import annotations

from pathlib import Path

import segmentation_models_pytorch as smp
import torch
from torch import nn

from sslseg.backbones import (
    check_arch,
    encoder_weights,
    imagenet_state_dict,
    timm_features_state,
    timm_name,
)
from sslseg.errors import SslsegError

__all__ = ["build_unet", "encoder_weights", "imagenet_state_dict"]


def _smp_unet(arch: str) -> nn.Module:
    name = timm_name(arch)
    if name is None:
        return smp.Unet(encoder_name=arch, encoder_weights=None, in_channels=3, classes=1)
    try:
        return smp.Unet(encoder_name=f"tu-{name}", encoder_weights=None, in_channels=3, classes=1)
    except (ValueError, RuntimeError, AttributeError, TypeError) as exc:
        # e.g. a ViT: one stride for every block, which smp cannot give skip connections
        raise SslsegError(
            f"config: arch: smp cannot build a U-Net on the timm model '{name}' "
            f"({exc.__class__.__name__}: {str(exc).strip()[:160]})"
        ) from None


def _load_timm(model: nn.Module, state: dict[str, torch.Tensor], arch: str, encoder: str) -> None:
    features = model.encoder.model
    renamed, missing = timm_features_state(state, features)
    if missing:
        raise SslsegError(
            f"{encoder}: weights do not fit the {arch} encoder (missing {missing[:3]})"
        )
    try:
        nn.Module.load_state_dict(features, renamed, strict=True)
    except RuntimeError as exc:  # a tensor of another shape
        text = " ".join(str(exc).split())[:200]
        raise SslsegError(f"{encoder}: weights do not fit the {arch} encoder ({text})") from None


def build_unet(arch: str = "resnet18", encoder: str | Path | None = None) -> nn.Module:
    """U-Net with skip connections on a ResNet or timm encoder, one output channel (logits)."""
    check_arch(arch)
    state = encoder_weights(arch, encoder)
    model = _smp_unet(arch)
    if state is None:
        return model
    if timm_name(arch) is not None:
        _load_timm(model, state, arch, str(encoder))
        return model
    # smp's encoder overrides load_state_dict (returns None); use the plain module's
    missing, unexpected = nn.Module.load_state_dict(model.encoder, state, strict=False)
    if missing or unexpected:
        raise SslsegError(
            f"{encoder}: weights do not fit the {arch} encoder "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    return model


def save_smp_pretrained(model: nn.Module, folder: Path) -> Path:
    """Write ``model`` in smp's own layout (``config.json`` + ``model.safetensors``), so
    ``segmentation_models_pytorch.from_pretrained(folder)`` loads it without sslseg.

    A contiguous CPU copy is saved (safetensors refuses channels_last strides), into a
    temporary folder renamed at the end: a kill leaves no half-written folder.
    """
    import copy

    from sslseg.atomic import building

    folder = Path(folder)
    plain = copy.deepcopy(model).to("cpu", memory_format=torch.contiguous_format)
    with building(folder, replace=True) as tmp:
        plain.save_pretrained(str(tmp))
    return folder
