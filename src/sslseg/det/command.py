"""``sslseg detect [CONFIG.yaml] [key=value ...]``: fine-tune and test Mask R-CNN (instance
segmentation and detection); a thin layer over :func:`sslseg.det.train.detect`."""

from __future__ import annotations

import argparse
import json

from sslseg.config import add_config_arguments, config_from_args

NOTES = """\
values: source sample | oxford-pet | seg-folder | coco; instances auto | components
(8-connected blobs of the binary mask, at least min_area px) | map (ids of an instance label
map: auto when source_options.masks is instances, and for coco: one id per annotation); arch
resnet18 | resnet50; encoder random | imagenet | PATH of an exported encoder.pt; test_splits of
a layout with its own split (Roboflow): [test] or [val, test]; source_options e.g. {foreground:
nonzero, include: "PV01_*"} for seg-folder, {annotations: instances.json, images: images,
categories: [panel]} for coco (default: Roboflow's _annotations.coco.json, in root or in each
of train/ valid/ test/).
examples:
  sslseg detect configs/detect/pv01.yaml encoder=runs/simclr/encoder.pt
  sslseg detect source=seg-folder root=../shared/data/dsb2018-nuclei \\
      source_options='{masks: instances, foreground: nonzero}' detections_per_image=300
  sslseg detect source=coco root=exports/roboflow-coco test_splits='[val, test]'"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from sslseg.det.train import DetectConfig

    add_config_arguments(parser, DetectConfig, notes=NOTES)


def run(args: argparse.Namespace) -> int:
    from sslseg.det.train import detect

    config = config_from_args(args)
    results = detect(config)
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in results.items()}))
    print(f"run folder: {config.out}")
    return 0
