"""Every committed config loads as its command would load it, before anything runs.

The GPU configs cannot be run on the 2-core CI machine; a typo in one of them (a misspelt key,
an impossible value, a pretraining key `sslseg pretrain` does not know) would surface only
hours into a study on a borrowed GPU. Loading each file with its command's typed config — and
resolving every pretraining config a study would start — catches that here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sslseg.augment.pix2pix_train import Pix2PixConfig
from sslseg.config import load_config
from sslseg.det.train import DetectConfig
from sslseg.eval.command import EvaluateConfig
from sslseg.experiments import label_curves, policy_grid
from sslseg.experiments.grid import ExperimentConfig, ModelSpec, check_pretraining
from sslseg.experiments.label_curves import LabelCurveConfig
from sslseg.experiments.linear_curves import LinearCurveConfig
from sslseg.experiments.policy_grid import PolicyGridConfig
from sslseg.experiments.pseudo_labels import PseudoLabelConfig
from sslseg.seg.finetune import FinetuneConfig
from sslseg.ssl.command import PretrainConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

#: the command config of each file, by its folder under configs/ (or its name at the top)
BY_FOLDER: dict[str, type] = {
    "detect": DetectConfig,
    "evaluate": EvaluateConfig,
    "label-curves": LabelCurveConfig,
    "linear-curves": LinearCurveConfig,
    "pix2pix": Pix2PixConfig,
    "policy-grid": PolicyGridConfig,
    "pretrain": PretrainConfig,
    "pseudo": PseudoLabelConfig,
}
TOP_LEVEL: dict[str, type] = {
    "evaluate.yaml": EvaluateConfig,
    "finetune.yaml": FinetuneConfig,
    "segmentation-payoff.yaml": ExperimentConfig,
    "table41.yaml": ExperimentConfig,
    "table41-cpu.yaml": ExperimentConfig,
}
FILES = sorted(CONFIGS.rglob("*.yaml"))


def config_class(path: Path) -> type | None:
    """The command config of ``path``; None for a file not mapped above."""
    relative = path.relative_to(CONFIGS)
    if len(relative.parts) == 1:
        return TOP_LEVEL.get(relative.name)
    return BY_FOLDER.get(relative.parts[0])


def pretrained_models(config: object) -> list[ModelSpec]:
    """The models a study pretrains, as the study itself lists them."""
    if isinstance(config, PolicyGridConfig):
        return policy_grid.models(config)
    if isinstance(config, LabelCurveConfig):
        return label_curves.lines(config)
    if isinstance(config, (ExperimentConfig, LinearCurveConfig)):
        return config.models
    return []


def test_every_committed_config_has_a_command():
    assert len(FILES) >= 20
    unknown = [str(p.relative_to(CONFIGS)) for p in FILES if config_class(p) is None]
    assert not unknown, f"map these configs to their command here: {unknown}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_committed_config_loads_with_its_pretraining(path):
    config = load_config(config_class(path), str(path))
    models = pretrained_models(config)
    if models:
        # every (model, seed) pretraining config resolves and its view policy is known
        check_pretraining(config, models, config.seeds)
