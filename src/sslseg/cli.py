"""The ``sslseg`` command: one sub-command per stage of the pipeline.

Every sub-command reads ``sslseg NAME [CONFIG.yaml] [key=value ...]`` through
the one loader of :mod:`sslseg.config` (``--help`` lists its keys), then calls one function
with the typed config.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from sslseg.errors import SslsegError

# name -> (module with add_arguments/run, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "quickstart": (
        "sslseg.experiments.quickstart",
        "the whole pipeline in miniature on the embedded sample (a few minutes on a CPU)",
    ),
    "saliency": (
        "sslseg.saliency.command",
        "HC / RC saliency maps, SaliencyCut masks and region "
        "images for a folder (or fill the saliency cache)",
    ),
    "pix2pix": (
        "sslseg.augment.command",
        "train the Pix2Pix proxy of SaliencyCut (policy pix2pix+... uses it as a view)",
    ),
    "pretrain": ("sslseg.ssl.command", "self-supervised pretraining of a ResNet encoder"),
    "finetune": ("sslseg.seg.command", "fine-tune and test a U-Net on segmentation data"),
    "detect": (
        "sslseg.det.command",
        "fine-tune and test Mask R-CNN (instance segmentation and detection, COCO AP)",
    ),
    "evaluate": (
        "sslseg.eval.command",
        "kNN, linear evaluation at label fractions and clustering of frozen encoders",
    ),
    "label-curves": (
        "sslseg.experiments.label_curves",
        "segmentation IoU/AP against the fraction of training images, one line per encoder",
    ),
    "linear-curves": (
        "sslseg.experiments.linear_curves",
        "pretrain per model and seed, then linear probes at label fractions (Fig. 11)",
    ),
    "policy-grid": (
        "sslseg.experiments.policy_grid",
        "methods x view policies, each fine-tuned (U-Net IoU, Mask R-CNN mask AP) (Fig. 9)",
    ),
    "pseudo-label": (
        "sslseg.experiments.pseudo_labels",
        "U-Net from SaliencyCut pseudo-masks: zero labels, pseudo pretraining + label fractions",
    ),
    "experiment": (
        "sslseg.experiments.command",
        "run a grid (models x dev fractions x seeds) and write a report with intervals",
    ),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that sub-command's module is imported (fast start)."""
    parser = argparse.ArgumentParser(
        prog="sslseg",
        description="Self-supervised pretraining of image encoders and their use in foreground "
        "segmentation.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name, help=help_text)
            continue
        command = importlib.import_module(module)
        child = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.add_arguments(child)
        child.set_defaults(run=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
    # key=value arguments may follow flags (argparse would keep only the first run of them)
    args, extra = parser.parse_known_args(argv)
    if extra:
        flags = [a for a in extra if a.startswith("-")]
        if flags or not hasattr(args, "config_args"):
            parser.error(f"unrecognized arguments: {' '.join(flags or extra)}")
        args.config_args = [*args.config_args, *extra]
    if not getattr(args, "run", None):
        parser.print_help()
        return 0
    try:
        return int(args.run(args) or 0)
    except SslsegError as exc:
        print(f"sslseg: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sslseg: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
