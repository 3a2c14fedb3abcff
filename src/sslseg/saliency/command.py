"""``sslseg saliency``: HC/RC maps, SaliencyCut masks and region images for a folder of images.

    sslseg saliency IMAGES_DIR OUT_DIR [--scale 1|2] [--workers N]
    sslseg saliency --cache --source NAME --root DIR --side S [--scale 1|2]  (see saliency.cache)

writes ``OUT_DIR/maps/<stem>.png`` (RC map, 0-255), ``OUT_DIR/hc/<stem>.png`` (HC map),
``OUT_DIR/masks/<stem>.png`` (SaliencyCut mask, 0/255) and ``OUT_DIR/regions/<stem>.png`` (the
segmentation image: RC regions split along the mask, each painted with its mean colour).
``--scale 2`` processes a x2 bicubic upscale, the study's "200p".
"""

from __future__ import annotations

import argparse
import os

from sslseg.errors import SslsegError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``sslseg saliency``."""
    parser.add_argument("images", nargs="?", help="folder of images (jpg, png, ...; not recursive)")
    parser.add_argument(
        "out", nargs="?", help="output folder (maps/, hc/, masks/, regions/ are created)"
    )
    parser.add_argument(
        "--scale",
        type=int,
        choices=(1, 2),
        default=1,
        help="1: original size (the study's 100p); 2: x2 bicubic upscale (200p)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=max(1, (os.cpu_count() or 1)),
        help="processes in parallel (default: all cores)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    from sslseg.saliency.cache import add_cache_arguments

    add_cache_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Process the folder; raises SslsegError (one line) for bad input."""
    from sslseg.saliency.batch import process_folder

    if args.workers < 1:
        raise SslsegError(f"--workers: must be >= 1, got {args.workers}")
    if args.cache:
        from sslseg.saliency.cache import run as fill_cache

        return fill_cache(args)
    if args.images is None or args.out is None:
        raise SslsegError("images, out: both folders are needed (or --cache --source ...)")
    n = process_folder(
        args.images, args.out, scale=args.scale, workers=args.workers, progress=not args.quiet
    )
    print(f"saliency: {n} images -> {args.out}")
    return 0
