"""Backbones shared by pretraining, evaluation and the U-Net: torchvision ResNets or timm.

An exported encoder is a torchvision-format ``state_dict`` (``encoder.pt``, no ``fc``) with a
JSON sidecar (``encoder.json``: arch, stem, method, data, epochs, policy, seed). Keeping the
torchvision key names means ``torchvision.models.resnet18().load_state_dict(sd, strict=False)``
and smp's ResNet encoder both take it unchanged.

``arch`` is ``resnet18`` / ``resnet50`` (torchvision, the study's networks) or any other model
name timm knows (``convnext_atto``, ``efficientnet_b0``, ``timm/resnet50`` for timm's own
ResNet): ``timm.create_model(name, num_classes=0)``, whose forward returns pooled features.
Its export is a timm-format ``state_dict`` (that model's keys, no classifier), which
``timm.create_model(name)`` and smp's ``tu-<name>`` encoder (:func:`timm_features_state`) take.
"""

from __future__ import annotations

import difflib
import json
import socket
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
#: ``timm/<name>`` names timm's model even where a torchvision one has the name (``resnet50``)
TIMM_PREFIX = "timm/"
# A blackholed network would otherwise hang a weight download for minutes.
DOWNLOAD_TIMEOUT_S = 30.0


def timm_name(arch: str) -> str | None:
    """The timm model name ``arch`` stands for; None for the torchvision ResNets of ARCHS."""
    if arch in ARCHS:
        return None
    return arch.removeprefix(TIMM_PREFIX)


def canonical_arch(arch: str) -> str:
    """One spelling per network: ``timm/convnext_atto`` is ``convnext_atto``."""
    name = timm_name(arch)
    if name is None:
        return arch
    return TIMM_PREFIX + name if name in ARCHS else name


def _close_archs(arch: str) -> list[str]:
    import timm  # timm's import takes seconds: only for names that are not torchvision's

    names = list(dict.fromkeys([*ARCHS, *timm.list_models()]))  # timm lists resnet18 too
    query = arch.removeprefix(TIMM_PREFIX).lower()
    return difflib.get_close_matches(query, names, n=5, cutoff=0.6)


def check_arch(arch: str, stem: str | None = None, resnet_only: str = "") -> None:
    """Refuse, in one line, an ``arch`` (and ``stem``) that no backbone builder takes.

    ``stem`` None or ``auto`` is not checked (the caller has none, or resolves ``auto``
    later); the CIFAR stem exists for the torchvision ResNets only. ``resnet_only`` names a
    consumer (e.g. ``"Mask R-CNN"``) that takes the torchvision ResNets alone.
    """
    stem = None if stem == "auto" else stem
    name = timm_name(arch)
    if name is None:
        if stem is not None and stem not in STEMS:
            raise SslsegError(
                f"config: stem: unknown stem '{stem}' (choose from {', '.join(STEMS)})"
            )
        return
    import timm

    if not timm.is_model(name):
        close = _close_archs(arch)
        hint = f"close: {', '.join(close)}; " if close else ""
        raise SslsegError(
            f"config: arch: unknown architecture '{arch}' ({hint}{', '.join(ARCHS)} are "
            "torchvision's, any other name is one of timm.list_models())"
        )
    if resnet_only:
        raise SslsegError(
            f"config: arch: {resnet_only} takes the torchvision ResNets only "
            f"({', '.join(ARCHS)}), not the timm arch '{arch}'"
        )
    if stem not in (None, "imagenet"):
        raise SslsegError(
            f"config: stem: '{stem}' applies to the torchvision ResNets only "
            f"({', '.join(ARCHS)}); the timm arch '{arch}' keeps its own stem (stem=imagenet)"
        )


def feature_dim(arch: str, model: nn.Module | None = None) -> int:
    """Width of the pooled features ``arch``'s backbone (``model``, if built) returns."""
    if timm_name(arch) is None:
        return FEATURE_DIMS[arch]
    if model is None:
        model = _timm_model(arch, device="meta")  # no weights allocated, only the shapes
    # timm's pre-logits width: MobileNetV3's conv_head widens num_features (288 -> 1024)
    return int(getattr(model, "head_hidden_size", None) or model.num_features)


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


def _timm_model(arch: str, pretrained: bool = False, device: str = "cpu") -> nn.Module:
    import timm

    try:
        with torch.device(device):
            return timm.create_model(timm_name(arch), pretrained=pretrained, num_classes=0)
    except Exception:  # only the meta-device attempt falls back
        if device == "cpu":
            raise
        # a model whose constructor computes with tensors cannot be built on the meta device
        return timm.create_model(timm_name(arch), pretrained=pretrained, num_classes=0)


def build_backbone(arch: str = "resnet18", stem: str = "imagenet") -> nn.Module:
    """A randomly initialised backbone whose forward returns pooled ``B x D`` features.

    ``resnet18`` / ``resnet50``: :func:`build_resnet` (unchanged, so a seed gives the same
    weights as before timm backbones existed); any other name: timm's model, ``num_classes=0``.
    """
    check_arch(arch, stem)
    if timm_name(arch) is None:
        return build_resnet(arch, stem)
    return _timm_model(arch)


def _classifier_prefixes(backbone: nn.Module) -> tuple[str, ...]:
    # timm names its classifier in pretrained_cfg (head.fc, classifier, ...); built with
    # num_classes=0 it is an Identity without weights, this only guards a model built with one
    cfg = getattr(backbone, "pretrained_cfg", None)
    if not isinstance(cfg, dict):
        return ("fc.",)
    names = cfg.get("classifier") or ()
    names = (names,) if isinstance(names, str) else tuple(names)
    return tuple(f"{name}." for name in names)


def encoder_state_dict(backbone: nn.Module) -> dict[str, torch.Tensor]:
    """The backbone's weights in torchvision (timm) naming, without ``fc`` (the classifier),
    as CPU tensors."""
    drop = _classifier_prefixes(backbone)
    return {
        k: v.detach().cpu().contiguous().clone()
        for k, v in backbone.state_dict().items()
        if not k.startswith(drop)
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
    """Read an exported encoder and its sidecar (absent sidecar: a ResNet's arch and stem are
    inferred; a timm export needs its sidecar to name the arch)."""
    path = Path(path)
    if not path.is_file():
        raise SslsegError(f"{path}: encoder file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise SslsegError(f"{path}: not a readable PyTorch state_dict ({exc})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    sidecar = path.with_suffix(".json")
    meta: dict[str, Any] = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
    if timm_name(str(meta.get("arch", "resnet18"))) is not None:
        if not isinstance(state, dict):
            raise SslsegError(f"{path}: not a state_dict of {meta['arch']} (a {type(state)})")
        try:
            check_arch(meta["arch"])
        except SslsegError as exc:
            raise SslsegError(f"{sidecar}: {exc}") from None
        meta["stem"] = meta.get("stem") or "imagenet"  # a timm model has its own stem only
        return state, meta
    if not isinstance(state, dict) or "conv1.weight" not in state:
        raise SslsegError(
            f"{path}: not a torchvision-format ResNet state_dict (no conv1.weight), and no "
            "encoder.json names a timm arch"
        )
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    meta.setdefault("stem", "cifar" if state["conv1.weight"].shape[-1] == 3 else "imagenet")
    meta.setdefault("arch", "resnet50" if "layer1.0.conv3.weight" in state else "resnet18")
    return state, meta


def load_backbone(path: Path) -> tuple[nn.Module, dict[str, Any]]:
    """An exported encoder as a ready backbone (pooled features out) plus its metadata."""
    state, meta = load_encoder(path)
    model = build_backbone(meta["arch"], meta["stem"])
    # a timm state_dict saved with its classifier: the backbone has none (num_classes=0)
    state = {k: v for k, v in state.items() if not k.startswith(_classifier_prefixes(model))}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # a tensor of another shape: another network of that name
        raise SslsegError(f"{path}: weights do not fit {meta['arch']} ({_one_line(exc)})") from None
    if missing or unexpected:
        raise SslsegError(
            f"{path}: weights do not fit {meta['arch']} ({meta['stem']} stem): "
            f"missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    return model, meta


def _one_line(exc: BaseException, limit: int = 200) -> str:
    """``exc`` as one short line (an error message here is one line, never a traceback)."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return f"{exc.__class__.__name__}: {text[:limit]}" if text else exc.__class__.__name__


def imagenet_timm(arch: str) -> nn.Module:
    """timm's ImageNet weights for ``arch`` (its cache, else the Hugging Face Hub), no
    classifier; offline without a cached copy: one sentence, as for torchvision's."""
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        return _timm_model(arch, pretrained=True)
    except Exception as exc:  # hub and HTTP errors, OSError, a model without weights ...
        raise SslsegError(
            f"encoder: ImageNet weights for {arch} are not cached and could not be downloaded "
            f"by timm ({_one_line(exc, 80)}); go online once or pass an encoder file"
        ) from None
    finally:
        socket.setdefaulttimeout(old_timeout)


def imagenet_state_dict(arch: str) -> dict[str, torch.Tensor]:
    """torchvision's (timm's) ImageNet weights (from its cache, else downloaded), without
    ``fc`` (the classifier)."""
    if timm_name(arch) is not None:
        return encoder_state_dict(imagenet_timm(arch))
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
    if canonical_arch(str(meta.get("arch", arch))) != canonical_arch(arch):
        raise SslsegError(f"{encoder}: encoder is {meta['arch']} but arch is {arch}")
    return state


def _export_key(key: str, state: dict[str, torch.Tensor]) -> str | None:
    """The key of timm's full model that ``key`` of its ``features_only`` model is.

    timm's feature wrappers keep the model's names, except that ``FeatureListNet`` flattens
    the first level of a Sequential (``stages.0.x`` -> ``stages_0.x``) and ``FeatureGetterNet``
    holds the model as ``model``.
    """
    for name in (key, key.removeprefix("model.")):
        if name in state:
            return name
        head, dot, rest = name.partition(".")
        for i, char in enumerate(head):
            candidate = f"{head[:i]}.{head[i + 1 :]}{dot}{rest}"
            if char == "_" and candidate in state:
                return candidate
    return None


def timm_features_state(
    state: dict[str, torch.Tensor], features: nn.Module
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """A timm export renamed for ``features`` (timm's ``features_only`` model of the same
    arch, e.g. smp's ``tu-`` encoder's ``.model``), and the keys of ``features`` it lacks.

    Export keys ``features`` has no use for (the layers after the last stage: MobileNet's
    ``conv_head``, EfficientNet's ``bn2``) are left out.
    """
    renamed: dict[str, torch.Tensor] = {}
    missing: list[str] = []
    for key in features.state_dict():
        source = _export_key(key, state)
        if source is None:
            missing.append(key)
        else:
            renamed[key] = state[source]
    return renamed, missing
