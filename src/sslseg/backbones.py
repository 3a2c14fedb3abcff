"""ResNet backbones shared by pretraining, evaluation and the U-Net.

An exported encoder is a torchvision-format ``state_dict`` (``encoder.pt``, no ``fc``) with a
JSON sidecar (``encoder.json``: arch, stem, method, data, epochs, policy, seed). Keeping the
torchvision key names means ``torchvision.models.resnet18().load_state_dict(sd, strict=False)``
and smp's ResNet encoder both take it unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from sslseg.errors import SslsegError

ARCHS = ("resnet18", "resnet50")
STEMS = ("imagenet", "cifar")
FEATURE_DIMS = {"resnet18": 512, "resnet50": 2048}
#: the normalisation torchvision's ImageNet weights expect; every stage feeds images through it
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Build models under this block: their initial weights are named by ``seed`` alone.

    Modules draw their initial weights (backbone, heads, prototypes, queues, a U-Net's
    decoder) from torch's CPU generator while they are built on the CPU, so seeding it makes
    every process (every DDP rank) and every rerun start from the same weights whatever ran
    before. Only the CPU generator is seeded, and its state is restored on exit, so the
    caller's random stream is neither reset nor advanced.
    """
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield


def build_resnet(arch: str = "resnet18", stem: str = "imagenet") -> nn.Module:
    """A randomly initialised torchvision ResNet whose ``fc`` is the identity.

    ``stem="cifar"`` swaps the 7x7/2 conv and max-pool for a 3x3/1 conv without pooling,
    the usual choice for 32 px images (SimCLR paper, appendix B.9).
    """
    if arch not in ARCHS:
        raise SslsegError(f"arch: unknown architecture '{arch}' (choose from {', '.join(ARCHS)})")
    if stem not in STEMS:
        raise SslsegError(f"stem: unknown stem '{stem}' (choose from {', '.join(STEMS)})")
    model = getattr(torchvision.models, arch)(weights=None)
    if stem == "cifar":
        model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    model.fc = nn.Identity()
    return model


def encoder_state_dict(backbone: nn.Module) -> dict[str, torch.Tensor]:
    """The backbone's weights in torchvision naming, without ``fc``, as CPU tensors."""
    return {
        k: v.detach().cpu().contiguous().clone()
        for k, v in backbone.state_dict().items()
        if not k.startswith("fc.")
    }


def save_encoder(backbone: nn.Module, path: Path, meta: dict[str, Any]) -> Path:
    """Write ``path`` (state_dict) and its ``.json`` sidecar atomically; returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(encoder_state_dict(backbone), tmp)
    tmp.replace(path)
    sidecar = path.with_suffix(".json")
    tmp_meta = sidecar.with_suffix(".json.tmp")
    tmp_meta.write_text(json.dumps(meta, indent=2, sort_keys=True))
    tmp_meta.replace(sidecar)
    return path


def load_encoder(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read an exported encoder and its sidecar (absent sidecar: arch and stem are inferred)."""
    path = Path(path)
    if not path.is_file():
        raise SslsegError(f"{path}: encoder file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise SslsegError(f"{path}: not a readable PyTorch state_dict ({exc})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or "conv1.weight" not in state:
        raise SslsegError(f"{path}: not a torchvision-format ResNet state_dict (no conv1.weight)")
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    sidecar = path.with_suffix(".json")
    meta: dict[str, Any] = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
    meta.setdefault("stem", "cifar" if state["conv1.weight"].shape[-1] == 3 else "imagenet")
    meta.setdefault("arch", "resnet50" if "layer1.0.conv3.weight" in state else "resnet18")
    return state, meta


def load_backbone(path: Path) -> tuple[nn.Module, dict[str, Any]]:
    """An exported encoder as a ready ResNet (``fc`` = identity) plus its metadata."""
    state, meta = load_encoder(path)
    model = build_resnet(meta["arch"], meta["stem"])
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise SslsegError(
            f"{path}: weights do not fit {meta['arch']} ({meta['stem']} stem): "
            f"missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    return model, meta


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
            f"{encoder}: this encoder has the CIFAR stem (3x3 conv, no max-pool); the U-Net "
            "and Mask R-CNN need the ImageNet stem: pretrain with stem=imagenet"
        )
    if meta.get("arch", arch) != arch:
        raise SslsegError(f"{encoder}: encoder is {meta['arch']} but arch is {arch}")
    return state
