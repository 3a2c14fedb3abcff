import json

import pytest
import torch
import torchvision

from sslseg.backbones import build_resnet, save_encoder
from sslseg.errors import SslsegError
from sslseg.seg.unet import build_unet


def test_unet_takes_an_exported_encoder(tmp_path):
    backbone = torchvision.models.resnet18()
    # batch-norm statistics a fresh U-Net would not have (fresh ones are all ones/zeros)
    torch.manual_seed(0)
    backbone.layer4[1].bn2.running_var.uniform_(0.5, 2.0)
    path = save_encoder(backbone, tmp_path / "encoder.pt", {"arch": "resnet18", "stem": "imagenet"})
    model = build_unet("resnet18", path)
    assert torch.equal(model.encoder.conv1.weight, backbone.conv1.weight)
    assert torch.equal(model.encoder.layer4[1].bn2.running_var, backbone.layer4[1].bn2.running_var)
    out = model.eval()(torch.zeros(1, 3, 64, 64))
    assert out.shape == (1, 1, 64, 64)
    assert json.loads((tmp_path / "encoder.json").read_text())["arch"] == "resnet18"


def test_cifar_stem_is_refused(tmp_path):
    path = save_encoder(
        build_resnet("resnet18", "cifar"), tmp_path / "e.pt", {"arch": "resnet18", "stem": "cifar"}
    )
    with pytest.raises(SslsegError, match="CIFAR stem"):
        build_unet("resnet18", path)


def test_arch_mismatch_and_bad_file(tmp_path):
    path = save_encoder(build_resnet("resnet18"), tmp_path / "e.pt", {"arch": "resnet18"})
    with pytest.raises(SslsegError, match="encoder is resnet18 but arch is resnet50"):
        build_unet("resnet50", path)
    junk = tmp_path / "junk.pt"
    junk.write_text("nonsense")
    with pytest.raises(SslsegError, match="junk.pt: not a readable"):
        build_unet("resnet18", junk)


def test_imagenet_offline_is_one_sentence(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # empty cache: must try the network
    import urllib.request

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(SslsegError, match="could not be downloaded"):
        build_unet("resnet18", "imagenet")
