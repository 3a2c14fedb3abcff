"""The U-Net (segmentation_models_pytorch) and where its encoder weights come from."""

from __future__ import annotations

from pathlib import Path

import segmentation_models_pytorch as smp
import torch
import torchvision
from torch import nn

from sslseg.backbones import ARCHS, load_encoder
from sslseg.errors import SslsegError


def imagenet_state_dict(arch: str) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet weights (from its cache, else downloaded), without ``fc``."""
    weights = torchvision.models.get_model_weights(arch).IMAGENET1K_V1
    try:
        state = weights.get_state_dict(progress=False, check_hash=False)
    except Exception as exc:  # URLError, OSError, socket errors, HTTP errors ...
        raise SslsegError(
            f"encoder: ImageNet weights for {arch} are not cached and could not be downloaded "
            f"({exc.__class__.__name__}); go online once or pass an encoder file"
        ) from None
    return {k: v for k, v in state.items() if not k.startswith("fc.")}


def encoder_weights(arch: str, encoder: str | Path | None) -> dict[str, torch.Tensor] | None:
    """The state_dict named by ``encoder``: None/'random' (none), 'imagenet' or a file."""
    if encoder in (None, "", "random", "none"):
        return None
    if encoder == "imagenet":
        return imagenet_state_dict(arch)
    state, meta = load_encoder(Path(encoder))
    if meta.get("stem") == "cifar":
        raise SslsegError(
            f"{encoder}: this encoder has the CIFAR stem (3x3 conv, no max-pool); the U-Net needs "
            "the ImageNet stem: pretrain with stem=imagenet"
        )
    if meta.get("arch", arch) != arch:
        raise SslsegError(f"{encoder}: encoder is {meta['arch']} but arch is {arch}")
    return state


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
