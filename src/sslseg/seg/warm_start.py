"""A U-Net that starts whole from an earlier fine-tuning run (``FinetuneConfig.init``).

``init`` names a run's ``best.pt`` / ``last.pt`` (or its folder: ``best.pt``); its encoder,
decoder and head are loaded before the first step and the optimiser starts afresh. What the
file alone can tell is checked before the run folder exists (:func:`read_init`); the weights
must fit key by key and shape by shape (:func:`load_init`); and, unless transductive, the run
behind it must not have trained on this run's test images (:func:`init_saw`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from sslseg.backbones import canonical_arch
from sslseg.data.splits import pretraining_saw, same_root
from sslseg.errors import SslsegError
from sslseg.runs import RunDir

if TYPE_CHECKING:
    from sslseg.seg.finetune import FinetuneConfig


def init_checkpoint(init: str) -> Path:
    """The checkpoint ``init`` names: the file itself, or a run folder's ``best.pt``."""
    path = Path(init).expanduser()
    return path / "best.pt" if path.is_dir() else path


def _init_error(path: Path, why: str) -> SslsegError:
    return SslsegError(f"config: init: {path}: {why}")


def read_init(config: FinetuneConfig) -> tuple[Path, dict[str, torch.Tensor]]:
    """The checkpoint file of ``config.init`` and its U-Net state_dict, checked as far as the
    file alone allows: it exists, is a finetune checkpoint (``best.pt`` / ``last.pt``: a
    ``model`` state_dict) and, where its run's ``config.yaml`` lies beside it, that run's arch
    is this config's. The weights are matched key by key and shape by shape in :func:`load_init`.
    """
    path = init_checkpoint(config.init)
    if not path.is_file():
        raise _init_error(
            path, "no such checkpoint (a finetune run's best.pt or last.pt, or its folder)"
        )
    if path.resolve().parent == Path(config.out).expanduser().resolve():
        raise _init_error(path, "is a checkpoint of this run itself (out=); start from another run")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        text = " ".join(str(exc).split())[:160]
        raise _init_error(
            path, f"not a readable PyTorch checkpoint ({type(exc).__name__}: {text})"
        ) from None
    state = checkpoint.get("model") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise _init_error(
            path,
            "not a finetune checkpoint (no 'model' state_dict; an exported encoder.pt is encoder=)",
        )
    saved = RunDir(path.parent).read_yaml("config.yaml")
    arch = saved.get("arch") if isinstance(saved, dict) else None
    if arch is not None and canonical_arch(str(arch)) != canonical_arch(config.arch):
        raise _init_error(path, f"its run trained a U-Net on {arch}, but arch is {config.arch}")
    return path, state


def load_init(model: nn.Module, path: Path, state: dict[str, torch.Tensor], arch: str) -> None:
    """Load a whole-U-Net state_dict into ``model``: every key, every shape, or one line."""
    try:
        # the plain module's (smp's encoder overrides load_state_dict); strict: all or nothing
        nn.Module.load_state_dict(model, state, strict=True)
    except RuntimeError as exc:  # missing or unexpected keys, a tensor of another shape
        text = " ".join(str(exc).split())[:200]
        raise _init_error(path, f"its weights do not fit the {arch} U-Net ({text})") from None


def init_saw(
    path: Path,
    source: str,
    root: str,
    ids: list[str],
    splits: list[str],
    _visited: set[Path] | None = None,
) -> set[str]:
    """The ids among ``ids`` (a store of ``source`` over ``root``) that the run which wrote
    checkpoint ``path`` trained or selected its checkpoint on: the train and val ids of its
    ``split.json`` (when it read the same source and root), what its encoder was pretrained on
    (that encoder's sidecar) and, in turn, what its own ``init`` saw. A checkpoint without its
    run's ``config.yaml`` beside it, like an encoder without a sidecar, counts as unseen."""
    visited = set() if _visited is None else _visited
    folder = RunDir(path.parent)
    saved = folder.read_yaml("config.yaml")
    if not isinstance(saved, dict) or path.resolve() in visited:
        return set()
    visited.add(path.resolve())
    seen: set[str] = set()
    split = folder.read_json("split.json") or {}
    if saved.get("source") == source and same_root(str(saved.get("root") or ""), root):
        seen |= set(split.get("train", [])) | set(split.get("val", []))
    encoder = str(saved.get("encoder") or "random")
    sidecar = Path(encoder).with_suffix(".json")
    if encoder not in ("random", "imagenet") and sidecar.is_file():
        seen |= pretraining_saw(json.loads(sidecar.read_text()), source, root, ids, splits)
    if saved.get("init"):
        seen |= init_saw(init_checkpoint(str(saved["init"])), source, root, ids, splits, visited)
    return seen & set(ids)


def refuse_init_seen_test_images(
    path: Path, source: str, root: str, ids: list[str], splits: list[str], test: np.ndarray
) -> None:
    """Raise if the run behind checkpoint ``path`` (or what it started from) trained on any of
    the ``test`` rows: :func:`refuse_seen_test_images` for a whole-U-Net start."""
    seen = init_saw(path, source, root, ids, splits)
    overlap = sum(ids[i] in seen for i in test)
    if overlap:
        raise _init_error(
            path,
            f"its run (or what it started from) trained on {overlap} of the {len(test)} test "
            "images (start from a run on this run's split, or set transductive=true)",
        )
