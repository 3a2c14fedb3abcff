"""``sslseg finetune [CONFIG.yaml] [key=value ...]``: train and test the U-Net on a
segmentation dataset; a thin layer over :func:`sslseg.seg.finetune.finetune`."""

from __future__ import annotations

import argparse
import json

from sslseg.config import add_config_arguments, config_from_args

NOTES = """\
values: source sample | oxford-pet | seg-folder; border (what the trimap border is, sample and
oxford-pet) foreground | background | ignore; side a multiple of 32; arch resnet18 | resnet50
| a timm model name (e.g. convnext_atto); encoder random | imagenet | PATH of an exported
encoder.pt; augment none | flip; precision auto | fp32 | bf16; source_options e.g. {images:
img, masks: gt, foreground_value: 1} for seg-folder.
example: sslseg finetune configs/finetune.yaml encoder=runs/simclr/encoder.pt dev_fraction=0.2"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from sslseg.seg.finetune import FinetuneConfig

    add_config_arguments(parser, FinetuneConfig, notes=NOTES)


def run(args: argparse.Namespace) -> int:
    from sslseg.seg.finetune import finetune

    config = config_from_args(args)
    results = finetune(config)
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in results.items()}))
    print(f"run folder: {config.out}")
    return 0
