"""``sslseg pix2pix [CONFIG.yaml] [key=value ...]``: train the Pix2Pix proxy of SaliencyCut;
a thin layer over :func:`sslseg.augment.pix2pix_train.train_pix2pix`."""

from __future__ import annotations

import argparse

from sslseg.config import add_config_arguments, config_from_args

NOTES = """\
The pairs are the store's images and their cached SaliencyCut region images (the cache is
filled first); the generator learns from the images pretraining may see and is scored on the
held-out ones (held_l1, held_boundary_f in log.jsonl and results.json).
Use it as a view: sslseg pretrain policy=pix2pix+default pix2pix=RUN/generator.pt
example: sslseg pix2pix configs/pix2pix/pet64.yaml epochs=2 out=runs/try-pix2pix"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from sslseg.augment.pix2pix_train import Pix2PixConfig

    add_config_arguments(parser, Pix2PixConfig, notes=NOTES)


def run(args: argparse.Namespace) -> int:
    from sslseg.augment.pix2pix_train import train_pix2pix

    train_pix2pix(config_from_args(args))
    return 0
