"""Filling the cache of one store: ``sslseg saliency cache=true source=NAME root=DIR side=S``.

``python -m sslseg.saliency.cache [key=value ...]`` is the same command with ``cache=true``
(its older ``--source NAME --side S`` flags are aliases).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from sslseg.errors import SslsegError

if TYPE_CHECKING:
    from sslseg.saliency.command import SaliencyConfig


def fill_store_cache(config: SaliencyConfig) -> int:
    """Fill the cache of the store of ``config`` ahead of training, print what it holds, and
    return how many entries were added."""
    from sslseg.data.store import open_store
    from sslseg.saliency.cache.filling import StoreSources, cache_for_store, default_workers

    if not config.source:
        raise SslsegError("config: source: needed with cache=true (e.g. source=cats-vs-dogs)")
    store = open_store(
        config.source,
        config.root or None,
        side=config.side,
        resize=config.resize,
        progress=config.progress,
    )
    t0 = time.perf_counter()
    cache = cache_for_store(
        store, config.scale, root=config.cache_root or None, source_side=config.source_side
    )
    before = len(cache)
    sources = StoreSources(store)
    added = cache.fill(
        store.images,
        store.hashes,
        config.workers or default_workers(),
        progress=config.progress,
        sources=sources,
        resize=sources.resize,
    )
    seconds = time.perf_counter() - t0
    rate = f", {added / seconds:.1f} img/s" if added else ""
    print(
        f"{cache.folder}: {len(cache)} entries ({before} before, {added} added in "
        f"{seconds:.1f} s{rate}); {len(store)} store images all cached"
    )
    return added


def main(argv: list[str] | None = None) -> int:
    """``python -m sslseg.saliency.cache ...``: ``sslseg saliency cache=true ...``."""
    import sys

    from sslseg.cli import main as sslseg_main

    argv = sys.argv[1:] if argv is None else argv
    return sslseg_main(["saliency", "cache=true", *argv])
