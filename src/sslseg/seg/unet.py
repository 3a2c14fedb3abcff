"""The U-Net (segmentation_models_pytorch) on a ResNet encoder; weights: ``sslseg.backbones``."""

from __future__ import annotations

from pathlib import Path

import segmentation_models_pytorch as smp
from torch import nn

from sslseg.backbones import ARCHS, encoder_weights, imagenet_state_dict
from sslseg.errors import SslsegError

__all__ = ["build_unet", "encoder_weights", "imagenet_state_dict"]


def build_unet(arch: str = "resnet18", encoder: str | Path | None = None) -> nn.Module:
    """U-Net with skip connections on a ResNet encoder, one output channel (logits)."""
    if arch not in ARCHS:
        raise SslsegError(f"config: arch: unknown architecture '{arch}' ({', '.join(ARCHS)})")
    state = encoder_weights(arch, encoder)
    model = smp.Unet(encoder_name=arch, encoder_weights=None, in_channels=3, classes=1)
    if state is not None:
        # smp's encoder overrides load_state_dict (returns None); use the plain module's
        missing, unexpected = nn.Module.load_state_dict(model.encoder, state, strict=False)
        if missing or unexpected:
            raise SslsegError(
                f"{encoder}: weights do not fit the {arch} encoder "
                f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
            )
    return model
