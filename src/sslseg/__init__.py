"""sslseg: self-supervised pretraining of image encoders for foreground segmentation.

The Python API (``docs/api.md``): ``sslseg.pretrain``, ``finetune``, ``evaluate``, ``detect``,
``experiment``, ``label_curves``, ``linear_curves``, ``policy_grid``, ``pseudo_label`` and
``pix2pix`` each take the typed config of their command, a dict of its keys or a YAML path,
plus keyword overrides.
"""

from sslseg.api import (
    detect,
    evaluate,
    experiment,
    finetune,
    label_curves,
    linear_curves,
    pix2pix,
    policy_grid,
    pretrain,
    pseudo_label,
)

__version__ = "0.1.0"
__all__ = [
    "detect",
    "evaluate",
    "experiment",
    "finetune",
    "label_curves",
    "linear_curves",
    "pix2pix",
    "policy_grid",
    "pretrain",
    "pseudo_label",
]
