"""Folders that appear whole or not at all: built under a temporary name, renamed at the end.

A store, a pseudo-label folder and an smp export are each several files; a kill half-way
must not leave a folder that a later run would take as complete. :func:`building` yields a
fresh temporary sibling to write into and renames it to the target only when the block ends
without an error; on an error or a kill (any ``BaseException``) the temporary folder goes.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def building(folder: Path, replace: bool = False) -> Iterator[Path]:
    """Yield an empty temporary sibling of ``folder``; rename it to ``folder`` on success.

    ``replace=False``: if another process completed ``folder`` first, its folder is kept and
    ours dropped (both were built from the same inputs). ``replace=True``: ours replaces it.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if replace:
            shutil.rmtree(folder, ignore_errors=True)
        try:
            tmp.rename(folder)
        except OSError:  # another process finished the same folder first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
