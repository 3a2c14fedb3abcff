"""Frozen encoder features: resolve an encoder spec, extract pooled features, cache them.

An encoder spec is a path to an exported ``encoder.pt`` (or a run folder holding one),
``random`` (a seeded random initialisation) or ``imagenet`` (torchvision's supervised
ImageNet weights, the reference row of the paper's Figs. 7, 11 and 12; timm's for a timm arch).
Features are the global-average-pooled output of the last ResNet stage (the "penultimate
layer" of §3.4.3; a timm arch: its pooled pre-logits features),
computed under ``torch.no_grad`` in eval mode, so BatchNorm uses its running statistics.

The cache key is (encoder content hash, or ``random``+arch+stem+seed, or ``imagenet``+arch) x
(store folder, which is unique per source, side and fingerprint) x input side, so a retrained
checkpoint or a changed data folder can never be served stale features.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.error import URLError

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from tqdm import tqdm

from sslseg.backbones import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    STEMS,
    build_backbone,
    check_arch,
    feature_dim,
    imagenet_timm,
    load_backbone,
    seeded,
    timm_name,
)
from sslseg.errors import SslsegError

# Bumped whenever extraction changes (normalisation, pooling), so old caches are not reused.
FEATURE_VERSION = 1
# A blackholed network would otherwise hang urllib forever inside torchvision's download.
DOWNLOAD_TIMEOUT_S = 30.0


@dataclass
class Encoder:
    """A ready, frozen backbone plus what identifies it in caches, tables and plots."""

    model: nn.Module
    name: str
    spec: str
    key: str
    meta: dict[str, Any]

    @property
    def feature_dim(self) -> int:
        return feature_dim(self.meta["arch"], self.model)


def file_hash(path: Path) -> str:
    """blake2b of a file's bytes: the same weights under another name hit the same cache."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def auto_stem(input_side: int, arch: str = "resnet18") -> str:
    """CIFAR stem for small inputs (SimCLR appendix B.9), ImageNet stem otherwise; a timm
    arch has its own stem only (``imagenet``)."""
    if timm_name(arch) is not None:
        return "imagenet"
    return "cifar" if input_side <= 64 else "imagenet"


def _imagenet_resnet(arch: str) -> nn.Module:
    weights = torchvision.models.get_model_weights(arch).IMAGENET1K_V1
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)
    model = getattr(torchvision.models, arch)(weights=None)
    if cached.is_file():
        try:
            state = torch.load(cached, map_location="cpu", weights_only=True)
        except Exception as exc:  # a truncated download raises several types
            raise SslsegError(
                f"{cached}: cached ImageNet weights are unreadable ({exc}); "
                "delete the file to download it again"
            ) from None
    else:
        old_timeout = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
        try:
            state = weights.get_state_dict(progress=False)
        except (URLError, OSError, TimeoutError) as exc:
            raise SslsegError(
                f"imagenet: {arch} ImageNet weights are not in the torch hub cache ({cached}) "
                f"and could not be downloaded from {weights.url} ({exc}); copy the file there "
                "or evaluate an exported encoder or 'random' instead"
            ) from None
        finally:
            socket.setdefaulttimeout(old_timeout)
    model.load_state_dict(state)
    model.fc = nn.Identity()
    return model


def resolve_encoder(
    spec: str, arch: str = "resnet18", stem: str = "auto", seed: int = 0, input_side: int = 32
) -> Encoder:
    """Build the frozen backbone named by ``spec`` (path, ``random`` or ``imagenet``).

    ``arch`` and ``stem`` apply to ``random`` and ``imagenet`` only; an exported encoder
    carries its own in its sidecar. ``stem="auto"`` picks :func:`auto_stem` of ``input_side``.
    """
    check_arch(arch)
    if spec == "random":
        stem = auto_stem(input_side, arch) if stem == "auto" else stem
        if stem not in STEMS:
            raise SslsegError(
                f"config: stem: unknown stem '{stem}' (choose from auto, {', '.join(STEMS)})"
            )
        # A private generator state: the same seed gives the same weights whatever ran before.
        with seeded(seed):
            model = build_backbone(arch, stem)
        meta = {"arch": arch, "stem": stem, "method": "random", "seed": seed}
        # "timm/resnet50": no "/" in a cache file name
        key = f"random-{arch.replace('/', '-')}-{stem}-s{seed}"
        return Encoder(model.eval(), "random", spec, key, meta)
    if spec == "imagenet":
        model = _imagenet_resnet(arch) if timm_name(arch) is None else imagenet_timm(arch)
        meta = {"arch": arch, "stem": "imagenet", "method": "imagenet-supervised"}
        return Encoder(model.eval(), "imagenet", spec, f"imagenet-{arch.replace('/', '-')}", meta)
    path = Path(spec).expanduser()
    if path.is_dir() and (path / "encoder.pt").is_file():
        path = path / "encoder.pt"
    if not path.is_file():
        raise SslsegError(
            f"{spec}: encoder file not found (give an exported encoder.pt, "
            "a run folder holding one, 'random' or 'imagenet')"
        )
    model, meta = load_backbone(path)
    name = path.parent.name if path.name == "encoder.pt" else path.stem
    return Encoder(model.eval(), name or path.stem, str(path), f"file-{file_hash(path)}", meta)


@torch.no_grad()
def extract_features(
    model: nn.Module,
    images: np.ndarray,
    batch_size: int = 256,
    input_side: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = False,
    desc: str = "features",
) -> np.ndarray:
    """Pooled features (N x D float32) of uint8 ``images`` (N x S x S x 3).

    Images are scaled to [0, 1], optionally resized to ``input_side`` (bilinear, antialiased,
    e.g. 224 for ImageNet weights) and normalised with ImageNet mean/std.
    """
    device = torch.device(device)
    model = model.to(device).eval().to(memory_format=torch.channels_last)
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    out: list[np.ndarray] = []
    n = len(images)
    for start in tqdm(
        range(0, n, batch_size), desc=desc, disable=not progress, leave=False, unit="batch"
    ):
        # A copy: store images are read-only memmaps, which torch.from_numpy warns about.
        batch = torch.from_numpy(np.array(images[start : start + batch_size]))
        x = batch.to(device).permute(0, 3, 1, 2).float().div_(255.0)
        if input_side and input_side != x.shape[-1]:
            x = F.interpolate(
                x,
                size=(input_side, input_side),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )
        x = ((x - mean) / std).contiguous(memory_format=torch.channels_last)
        feats = model(x)
        out.append(feats.flatten(1).float().cpu().numpy())
    if not out:
        return np.zeros((0, 0), np.float32)
    return np.concatenate(out).astype(np.float32, copy=False)


def feature_cache_path(cache: Path, encoder: Encoder, store_root: Path, input_side: int) -> Path:
    """Where the features of ``encoder`` on the store at ``store_root`` live."""
    side = f"-in{input_side}" if input_side else ""
    return Path(cache) / Path(store_root).name / f"{encoder.key}{side}-v{FEATURE_VERSION}.npy"


def cached_features(
    encoder: Encoder,
    images: np.ndarray,
    store_root: Path,
    cache: Path | None,
    batch_size: int = 256,
    input_side: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> tuple[np.ndarray, bool]:
    """Features of ``images`` (the store at ``store_root``), from ``cache`` when present.

    Returns ``(features, hit)``. ``cache=None`` disables caching. Written atomically, so
    two sessions extracting the same features both end with one complete file.
    """
    path = feature_cache_path(cache, encoder, store_root, input_side) if cache else None
    if path is not None and path.is_file():
        try:
            feats = np.load(path)
            if feats.shape[0] == len(images):
                return feats, True
        except (OSError, ValueError):
            pass  # a damaged cache file is recomputed and overwritten below
    feats = extract_features(
        encoder.model,
        images,
        batch_size,
        input_side,
        device,
        progress,
        desc=f"features {encoder.name}",
    )
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, feats)
        tmp.replace(path)
        sidecar = {
            "spec": encoder.spec,
            "meta": encoder.meta,
            "store": str(store_root),
            "input_side": input_side,
            "shape": list(feats.shape),
        }
        path.with_suffix(".json").write_text(json.dumps(sidecar, indent=2, sort_keys=True))
    return feats, False
