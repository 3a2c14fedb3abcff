"""sslseg: self-supervised pretraining of image encoders for foreground segmentation.

The Python API (``docs/api.md``): ``sslseg.pretrain``, ``finetune``, ``evaluate``, ``detect``,
``experiment`` and ``label_curves`` each take the typed config of their command, a dict of its
keys or a YAML path, plus keyword overrides.
"""

from sslseg.api import detect, evaluate, experiment, finetune, label_curves, pretrain

__version__ = "0.1.0"
__all__ = ["detect", "evaluate", "experiment", "finetune", "label_curves", "pretrain"]
