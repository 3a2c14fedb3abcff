"""What the SSL tests share: the one-conv backbone every method is built on, and the two-process
``torchrun`` launch of the DDP tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from torch import nn


def tiny_backbone() -> nn.Module:
    """Conv 3→8, batch norm, ReLU, global pool: small enough for a test step in milliseconds,
    with batch norm so that what a method does with batch statistics is exercised."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )


def torchrun_two_cpu_processes(script: Path, *args: str, timeout: float = 300) -> None:
    """Run ``script args`` in two gloo processes under ``torchrun``; fail with their stderr.

    The worker is handed this folder as ``sys.argv[-1]`` (appended), for ``tiny.py``.
    """
    # an explicit free port on 127.0.0.1: with --master_port 0 the rendezvous hung here
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    cmd += ["--master_addr", "127.0.0.1", "--master_port", str(port)]
    cmd += [str(script), *args, str(Path(__file__).parent)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # its own session, so that a hang is cleaned up with the workers torchrun started
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    assert proc.returncode == 0, err[-3000:]
