"""What the throughput benchmarks share: each measurement in a process of its own, repeated
interleaved, reported as the median, with peak RSS (the process's and its workers')."""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def images_per_second(
    step: Callable[[], None], warmup: int, steps: int, batch: int, device: torch.device
) -> float:
    """``steps`` timed calls of ``step`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        step()
    sync(device)
    tic = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return steps * batch / (time.perf_counter() - tic)


def report_child(img_s: float) -> None:
    """The child's last line: its figure and the peak RSS of it and of its children (MB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"img_s={img_s:.2f} rss_mb={own:.0f} workers_rss_mb={workers:.0f}", flush=True)


def run_child(script: str, args: Sequence[str]) -> dict[str, float]:
    """Run ``script`` with ``args`` in a new interpreter; parse its :func:`report_child` line."""
    out = subprocess.run(
        [sys.executable, script, *args], check=True, capture_output=True, text=True
    ).stdout
    return {k: float(v) for k, v in (kv.split("=") for kv in out.strip().splitlines()[-1].split())}


def interleaved(
    measure: Callable[[str], dict[str, float]],
    pipelines: Sequence[str],
    repeats: int,
    label: str,
) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """``repeats`` rounds of every pipeline in turn: (median img/s, peak RSS, workers' RSS)."""
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in pipelines}
    for r in range(repeats):
        for name in pipelines:
            runs[name].append(measure(name))
            print(f"{label} repeat={r} {name} {runs[name][-1]['img_s']:.1f} img/s", flush=True)
    median = {k: statistics.median(m["img_s"] for m in v) for k, v in runs.items()}
    rss = {k: max(m["rss_mb"] for m in v) for k, v in runs.items()}
    workers = {k: max(m["workers_rss_mb"] for m in v) for k, v in runs.items()}
    return median, rss, workers
