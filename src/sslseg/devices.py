"""Which torch device a run uses: one rule for every command."""

from __future__ import annotations

import os

import torch

from sslseg.errors import SslsegError


def pick_device(device: str = "auto") -> torch.device:
    """``auto``: this process's GPU when there is one (``LOCAL_RANK`` under torchrun), else the
    CPU; an explicit name must exist on this machine."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        return (
            torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
        )
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise SslsegError(f"config: device: '{device}' is not a torch device") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SslsegError(f"config: device: '{device}' asked for but CUDA is not available")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", local_rank)
    return dev
