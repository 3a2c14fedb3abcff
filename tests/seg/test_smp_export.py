"""A fine-tuned U-Net in smp's own layout: ``smp.from_pretrained(<out>/smp)`` loads it."""

from __future__ import annotations

import pytest
import segmentation_models_pytorch as smp
import torch

from sslseg.backbones import seeded
from sslseg.config import load_config
from sslseg.runs import RunDir
from sslseg.seg.finetune import SMP_FOLDER, FinetuneConfig, finetune
from sslseg.seg.unet import build_unet, save_smp_pretrained


def _same_outputs(a: torch.nn.Module, b: torch.nn.Module, side: int = 64) -> bool:
    x = torch.rand(2, 3, side, side, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return torch.allclose(a.eval()(x), b.eval()(x), atol=1e-5)


def test_finetune_writes_the_best_unet_for_smp(tmp_path):
    values = {"source": "sample", "side": 32, "batch_size": 16, "dev_fraction": 0.5}
    cfg = load_config(FinetuneConfig, values={**values, "epochs": 2, "out": str(tmp_path)})
    finetune(cfg, progress=False)
    loaded = smp.from_pretrained(str(tmp_path / SMP_FOLDER))
    best = build_unet("resnet18")
    best.load_state_dict(RunDir(tmp_path).load("best.pt")["model"])
    assert isinstance(loaded, smp.Unet) and _same_outputs(loaded, best)


@pytest.mark.parametrize("arch", ["resnet18", "convnext_atto"])
def test_save_and_load_round_trip_channels_last(tmp_path, arch):
    with seeded(3):
        model = build_unet(arch).to(memory_format=torch.channels_last)
    folder = save_smp_pretrained(model, tmp_path / "smp")
    assert not (tmp_path / "smp.tmp").exists()
    assert _same_outputs(smp.from_pretrained(str(folder)), model)
