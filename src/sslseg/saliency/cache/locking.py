"""Locking and atomic writes of the saliency cache folder.

Appends and index commits happen under an exclusive ``fcntl.flock`` on ``<folder>/.lock``;
small files (``meta.json``) are replaced atomically: written and fsynced under a temporary
name, renamed over the old one, and the folder fsynced so that the rename itself is durable.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold the folder's exclusive lock (``.lock``, created when missing) for the block."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` so that a reader sees the old or the new bytes, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """fsync a directory (makes a rename inside it durable)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
