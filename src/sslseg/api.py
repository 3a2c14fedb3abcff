"""The Python API: one function per command, taking the command's own config.

Each function takes its typed config, a dict of its keys, or the path of a YAML file, plus
keyword overrides, checked exactly as ``sslseg NAME [CONFIG.yaml] [key=value ...]`` checks
them (an unknown key or a bad value is one ``SslsegError`` line), and returns what the command
writes as its result. ``docs/api.md`` has a worked example.

    import sslseg
    encoder = sslseg.pretrain({"source": "sample", "side": 32, "epochs": 2}, out="runs/a")
    scores = sslseg.finetune("configs/finetune.yaml", encoder=str(encoder), epochs=2)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sslseg.config import load_config
from sslseg.errors import SslsegError

if TYPE_CHECKING:
    from sslseg.augment.pix2pix_train import Pix2PixConfig
    from sslseg.det.train import DetectConfig
    from sslseg.eval.command import EvaluateConfig
    from sslseg.experiments.grid import ExperimentConfig
    from sslseg.experiments.label_curves import LabelCurveConfig
    from sslseg.experiments.linear_curves import LinearCurveConfig
    from sslseg.experiments.policy_grid import PolicyGridConfig
    from sslseg.experiments.pseudo_labels import PseudoLabelConfig
    from sslseg.saliency.command import SaliencyConfig
    from sslseg.seg.finetune import FinetuneConfig
    from sslseg.ssl.command import PretrainConfig

T = TypeVar("T")
#: what every function takes: the typed config, a mapping of its keys, a YAML path, or nothing
ConfigLike = Any


def as_config(cls: type[T], config: ConfigLike = None, **overrides: Any) -> T:
    """``config`` (an instance of ``cls``, a mapping, a YAML path or None) with ``overrides``
    applied, validated like the command line."""
    if isinstance(config, cls):
        return load_config(cls, values=overrides, base=config) if overrides else config
    if config is None or isinstance(config, Mapping):
        return load_config(cls, values={**dict(config or {}), **overrides})
    if isinstance(config, str | Path):
        return load_config(cls, config, values=overrides)
    raise SslsegError(
        f"config: expected a {cls.__name__}, a dict or a YAML path, got {type(config).__name__}"
    )


def pretrain(config: PretrainConfig | ConfigLike = None, **overrides: Any) -> Path:
    """``sslseg pretrain``: pretrain (or resume) and return the exported ``encoder.pt``."""
    from sslseg.ssl.command import PretrainConfig, pretrain_encoder

    return pretrain_encoder(as_config(PretrainConfig, config, **overrides))


def finetune(config: FinetuneConfig | ConfigLike = None, **overrides: Any) -> dict[str, Any]:
    """``sslseg finetune``: train and test the U-Net; returns the test metrics."""
    from sslseg.seg.finetune import FinetuneConfig
    from sslseg.seg.finetune import finetune as run

    return run(as_config(FinetuneConfig, config, **overrides))


def evaluate(config: EvaluateConfig | ConfigLike = None, **overrides: Any) -> dict[str, Any]:
    """``sslseg evaluate``: kNN, linear probes and clustering of frozen encoders."""
    from sslseg.eval.command import EvaluateConfig
    from sslseg.eval.command import evaluate as run

    return run(as_config(EvaluateConfig, config, **overrides))


def detect(config: DetectConfig | ConfigLike = None, **overrides: Any) -> dict[str, Any]:
    """``sslseg detect``: train and test Mask R-CNN; returns the COCO metrics."""
    from sslseg.det.train import DetectConfig
    from sslseg.det.train import detect as run

    return run(as_config(DetectConfig, config, **overrides))


def experiment(config: ExperimentConfig | ConfigLike = None, **overrides: Any) -> Path:
    """``sslseg experiment``: run (or resume) a grid; returns the report's path."""
    from sslseg.experiments.grid import ExperimentConfig
    from sslseg.experiments.run import run_experiment

    return run_experiment(as_config(ExperimentConfig, config, **overrides))


def label_curves(config: LabelCurveConfig | ConfigLike = None, **overrides: Any) -> Path:
    """``sslseg label-curves``: IoU against the label fraction; returns the CSV's path."""
    from sslseg.experiments.label_curves import LabelCurveConfig, run_label_curves

    return run_label_curves(as_config(LabelCurveConfig, config, **overrides))


def linear_curves(config: LinearCurveConfig | ConfigLike = None, **overrides: Any) -> Path:
    """``sslseg linear-curves``: linear probes at label fractions per model and seed (Fig. 11);
    returns the report's path."""
    from sslseg.experiments.linear_curves import LinearCurveConfig, run_linear_curves

    return run_linear_curves(as_config(LinearCurveConfig, config, **overrides))


def policy_grid(config: PolicyGridConfig | ConfigLike = None, **overrides: Any) -> Path:
    """``sslseg policy-grid``: methods x view policies, each encoder fine-tuned downstream
    (U-Net, Mask R-CNN) against random init over seeds (Fig. 9); returns the report's path."""
    from sslseg.experiments.policy_grid import PolicyGridConfig, run_policy_grid

    return run_policy_grid(as_config(PolicyGridConfig, config, **overrides))


def pix2pix(config: Pix2PixConfig | ConfigLike = None, **overrides: Any) -> Path:
    """``sslseg pix2pix``: train (or resume) the Pix2Pix proxy; returns its ``generator.pt``."""
    from sslseg.augment.pix2pix_train import Pix2PixConfig, train_pix2pix

    return train_pix2pix(as_config(Pix2PixConfig, config, **overrides))


def pseudo_label(config: PseudoLabelConfig | ConfigLike = None, **overrides: Any) -> dict[str, Any]:
    """``sslseg pseudo-label``: run (or resume) the pseudo-mask regimes; returns the summary
    (``complete``, cells, report paths, headline IoUs)."""
    from sslseg.experiments.pseudo_labels import PseudoLabelConfig, run_pseudo_labels

    return run_pseudo_labels(as_config(PseudoLabelConfig, config, **overrides))


def saliency(config: SaliencyConfig | ConfigLike = None, **overrides: Any) -> int:
    """``sslseg saliency``: maps and masks of a folder, or a store's cache; returns a count.

    Not re-exported as ``sslseg.saliency``: that name is the ``saliency`` sub-package."""
    from sslseg.saliency.command import SaliencyConfig
    from sslseg.saliency.command import saliency as run

    return run(as_config(SaliencyConfig, config, **overrides))
