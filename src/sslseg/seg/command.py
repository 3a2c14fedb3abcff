"""``sslseg finetune``: train and test the U-Net on a segmentation dataset."""

from __future__ import annotations

import argparse
import json

from sslseg.config import load_config
from sslseg.errors import SslsegError


def split_config_args(items: list[str]) -> tuple[str | None, list[str]]:
    """The optional YAML path (first argument without '=') and the key=value overrides."""
    config, overrides = None, []
    for item in items:
        if "=" in item:
            overrides.append(item)
        elif config is None:
            config = item
        else:
            raise SslsegError(
                f"{item}: only one config file may be given (overrides are key=value)"
            )
    return config, overrides


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "args",
        nargs="*",
        metavar="CONFIG|key=value",
        help="an optional YAML config, then key=value overrides",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.epilog = (
        "keys: source (sample|oxford-pet|seg-folder), root, border (foreground|background|ignore), "
        "side (multiple of 32), arch (resnet18|resnet50), encoder (random|imagenet|PATH to "
        "encoder.pt), dev_fraction, epochs, batch_size, lr, augment (none|flip), seed, device, out"
    )


def run(args: argparse.Namespace) -> int:
    from sslseg.seg.finetune import FinetuneConfig, finetune

    path, overrides = split_config_args(args.args)
    config = load_config(FinetuneConfig, path, overrides)
    results = finetune(config, progress=not args.quiet)
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in results.items()}))
    print(f"run folder: {config.out}")
    return 0
