"""Which torch device a run uses: one rule for every command."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable

import torch

from sslseg.config import PRECISIONS
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


def check_devices(devices: Iterable[str]) -> None:
    """Each device exists on this machine (:func:`pick_device`'s error otherwise): a study
    checks its sections' devices before it writes anything, not at its first cell."""
    for device in devices:
        pick_device(device)


def has_native_bf16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bf16 in hardware: a CUDA GPU that supports it, or a CPU
    with AVX-512 BF16 or AMX (where oneDNN's bf16 convolutions beat fp32; on older CPUs bf16
    is emulated and slower)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        cpu = torch.cpu
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(getattr(cpu, name, lambda: False)() for name in checks)
    return False


def resolve_precision(device: torch.device, precision: str = "auto") -> str:
    """``fp32`` or ``bf16``: ``auto`` picks bf16 where the device has native bf16."""
    if precision not in PRECISIONS:
        raise SslsegError(f"config: precision: '{precision}' is not one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if has_native_bf16(device) else "fp32"
    return precision


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` for ``precision == "bf16"`` (after :func:`resolve_precision`),
    else nothing."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def full_precision(tensor: torch.Tensor) -> contextlib.AbstractContextManager:
    """Autocast off on ``tensor``'s device. Losses run here: under autocast a matmul of
    fp32 inputs still runs in bf16, whose 8-bit mantissa blurs similarity logits."""
    return torch.autocast(tensor.device.type, enabled=False)
