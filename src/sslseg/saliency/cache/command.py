"""Filling the cache of one store from the command line.

``sslseg saliency --cache --source NAME --root DIR --side S [--scale 1|2]`` (the
``sslseg saliency`` entry, :mod:`sslseg.saliency.command`, adds these options and hands
``--cache`` runs here) or ``python -m sslseg.saliency.cache --source NAME --side S``.
"""

from __future__ import annotations

import argparse
import time

from sslseg.errors import SslsegError
from sslseg.saliency.batch import SCALES
from sslseg.saliency.cache.format import SOURCE_SIDE


def add_cache_arguments(parser: argparse.ArgumentParser) -> None:
    """The store options of ``sslseg saliency --cache`` (``--scale``/``--workers`` are shared)."""
    parser.add_argument(
        "--cache",
        action="store_true",
        help="fill the hashed saliency cache of a store ahead of pretraining (the images SSL "
        "sees: --source/--root/--side) instead of writing PNGs for a folder",
    )
    parser.add_argument("--source", default=None, help="with --cache: data source name")
    parser.add_argument("--root", default=None, help="with --cache: folder of the source")
    parser.add_argument("--side", type=int, default=64, help="with --cache: store side (64)")
    parser.add_argument("--resize", default="squash", help="with --cache: store resize rule")
    parser.add_argument(
        "--source-side",
        type=int,
        default=SOURCE_SIDE,
        help="with --cache: saliency is computed on the source image with its longer side "
        f"at most this ({SOURCE_SIDE}), then resized to the store side",
    )
    parser.add_argument(
        "--cache-root",
        default=None,
        help="with --cache: folder of saliency caches (default $SSLSEG_CACHE/saliency)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the stand-alone filler (``python -m sslseg.saliency.cache``)."""
    add_cache_arguments(parser)
    parser.add_argument(
        "--scale",
        type=int,
        default=1,
        choices=SCALES,
        help="1: rows at the store side (100p); 2: at twice the store side (200p)",
    )
    parser.add_argument("--workers", type=int, default=None, help="processes (default: cores)")


def run(args: argparse.Namespace) -> int:
    """Fill the cache of one store ahead of training and print what it holds."""
    from sslseg.data.store import open_store
    from sslseg.saliency.cache.filling import (
        StoreSources,
        cache_for_store,
        default_workers,
    )

    if not args.source:
        raise SslsegError("--source: needed with --cache (e.g. --source cats-vs-dogs)")
    if args.workers is not None and args.workers < 1:
        raise SslsegError(f"--workers: must be >= 1, got {args.workers}")
    source_side = getattr(args, "source_side", SOURCE_SIDE)
    progress = not getattr(args, "quiet", False)
    store = open_store(
        args.source, args.root, side=args.side, resize=args.resize, progress=progress
    )
    t0 = time.perf_counter()
    cache = cache_for_store(store, args.scale, root=args.cache_root, source_side=source_side)
    before = len(cache)
    sources = StoreSources(store)
    added = cache.fill(
        store.images,
        store.hashes,
        args.workers or default_workers(),
        progress=progress,
        sources=sources,
        resize=sources.resize,
    )
    seconds = time.perf_counter() - t0
    rate = f", {added / seconds:.1f} img/s" if added else ""
    print(
        f"{cache.folder}: {len(cache)} entries ({before} before, {added} added in "
        f"{seconds:.1f} s{rate}); {len(store)} store images all cached"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m sslseg.saliency.cache --source ... --side ...``."""
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m sslseg.saliency.cache", description="fill the saliency cache of a store"
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except SslsegError as exc:
        print(f"sslseg: error: {exc}", file=sys.stderr)
        return 2
