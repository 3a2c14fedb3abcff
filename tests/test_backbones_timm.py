"""Any timm model as ``arch`` (issue 20, item 1), beside the unchanged torchvision ResNets.

For three timm families: a two-step ``sslseg pretrain`` on the embedded sample, its export
loaded into ``timm.create_model`` (only the classifier missing) and into the smp U-Net's
``tu-`` encoder (nothing missing, the same stage outputs), and the frozen-feature path; every
SSL method trains a step on a timm backbone; bad names and stems are one line each.
"""

import json

import numpy as np
import pytest
import timm
import torch
import torchvision
from torch import nn

from sslseg.backbones import (
    build_backbone,
    build_resnet,
    check_arch,
    encoder_state_dict,
    feature_dim,
    seeded,
    timm_features_state,
)
from sslseg.errors import SslsegError
from sslseg.eval.features import extract_features, resolve_encoder
from sslseg.runs import RunDir
from sslseg.seg.unet import build_unet
from sslseg.ssl.command import PretrainConfig, pretrain_encoder
from sslseg.ssl.registry import REGISTRY, build_method

#: the smallest of three families timm 1.0 has: ConvNeXt (LayerNorm, no BN), MobileNetV3
#: (conv_head after pooling: 1024-d features from 288 channels), RegNetX
TIMM_ARCHS = ["convnext_atto", "mobilenetv3_small_050", "regnetx_002"]

#: narrow heads, so a step costs what the backbone costs
SMALL_HEADS = {
    "simclr": {"hidden_dim": 32, "out_dim": 16},
    "moco": {"queue_size": 32, "hidden_dim": 32, "out_dim": 16},
    "byol": {"hidden_dim": 32, "out_dim": 16},
    "simsiam": {"hidden_dim": 32, "out_dim": 32, "pred_hidden_dim": 8},
    "swav": {"hidden_dim": 32, "out_dim": 16, "n_prototypes": 8},
    "barlow_twins": {"hidden_dim": 32, "out_dim": 16},
}


def _pretrain(tmp_path, arch: str):
    """Two SimCLR steps (65 pretraining images of the sample // 22) at 32 px; the export."""
    cfg = PretrainConfig(
        source="sample",
        side=32,
        arch=arch,
        method_options=SMALL_HEADS["simclr"],
        epochs=1,
        batch_size=22,
        warmup_epochs=0,
        device="cpu",
        out=str(tmp_path / "run"),
        progress=False,
    )
    path = pretrain_encoder(cfg)
    assert RunDir(tmp_path / "run").read_log()[0]["steps"] == 2
    return path


@pytest.mark.parametrize("arch", TIMM_ARCHS)
def test_pretrain_export_loads_into_timm_and_the_unet(tmp_path, arch):
    path = _pretrain(tmp_path, arch)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["arch"] == arch and meta["stem"] == "imagenet" and meta["method"] == "simclr"

    state = torch.load(path, weights_only=True)
    model = timm.create_model(arch, pretrained=False)
    missing, unexpected = model.load_state_dict(state, strict=False)
    classifier = model.pretrained_cfg["classifier"]
    assert missing and all(k.startswith(f"{classifier}.") for k in missing), missing
    assert unexpected == []

    unet = build_unet(arch, path).eval()
    renamed, absent = timm_features_state(state, unet.encoder.model)
    assert absent == [] and renamed.keys() == unet.encoder.model.state_dict().keys()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        # the encoder holds the export: its deepest skip is timm's last stage on the same input
        deepest = unet.encoder(x)[-1]
        expected = model.eval().forward_intermediates(x, intermediates_only=True)[-1]
        assert torch.allclose(deepest, expected, atol=1e-5)
        assert unet(x).shape == (2, 1, 32, 32)

    encoder = resolve_encoder(str(path))
    images = np.zeros((3, 32, 32, 3), np.uint8)
    feats = extract_features(encoder.model, images, batch_size=2)
    assert feats.shape == (3, encoder.feature_dim) == (3, feature_dim(arch))


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_method_trains_a_step_on_a_timm_backbone(name):
    method = build_method(name, "regnetx_002", **SMALL_HEADS[name])
    method.to(memory_format=torch.channels_last)  # as the training loop leaves it
    views = [torch.randn(4, 3, 32, 32).contiguous(memory_format=torch.channels_last)] * 2
    loss = method(views)
    assert loss.shape == () and torch.isfinite(loss)
    loss.backward()
    assert method.backbone.stem.conv.weight.grad.abs().sum() > 0
    method.after_step(0.5)


def test_timm_prefix_names_timms_resnet_and_its_export_fits_the_unet(tmp_path):
    backbone = build_backbone("timm/resnet18")
    assert not isinstance(backbone, torchvision.models.ResNet)
    assert feature_dim("timm/resnet18", backbone) == 512
    path = tmp_path / "encoder.pt"
    torch.save(encoder_state_dict(backbone), path)
    path.with_suffix(".json").write_text(json.dumps({"arch": "timm/resnet18"}))
    unet = build_unet("timm/resnet18", path)
    assert torch.equal(unet.encoder.model.conv1.weight, backbone.conv1.weight)
    with pytest.raises(SslsegError, match="encoder is timm/resnet18 but arch is resnet18"):
        build_unet("resnet18", path)


def test_resnet18_is_torchvisions_unchanged():
    # the torchvision path builds the very network it built before timm: same keys, and under
    # a seed bit for bit torchvision's own ResNet (fc, drawn last, aside)
    with seeded(5):
        built = build_backbone("resnet18")
    with seeded(5):
        reference = torchvision.models.resnet18(weights=None)
    with seeded(5):
        method = build_method("simclr", "resnet18")
    assert isinstance(built, torchvision.models.ResNet) and isinstance(built.fc, nn.Identity)
    expected = {k: v for k, v in reference.state_dict().items() if not k.startswith("fc.")}
    for state in (encoder_state_dict(built), encoder_state_dict(method.backbone)):
        assert state.keys() == expected.keys()
        assert all(torch.equal(state[k], expected[k]) for k in expected)
    assert feature_dim("resnet18") == method.feature_dim == 512
    cifar = build_backbone("resnet18", "cifar")
    assert cifar.conv1.kernel_size == (3, 3) and isinstance(cifar.maxpool, nn.Identity)
    assert encoder_state_dict(cifar).keys() == encoder_state_dict(build_resnet()).keys()


def test_unknown_arch_is_one_line_with_close_matches():
    for build in (check_arch, build_backbone, build_unet, lambda a: build_method("simclr", a)):
        with pytest.raises(SslsegError, match="unknown architecture 'convnxt_atto'") as err:
            build("convnxt_atto")
        assert "close: convnext_atto" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(SslsegError, match="close: resnet18"):
        check_arch("resnet_18")


def test_stems_and_mask_rcnn_take_resnets_only():
    with pytest.raises(SslsegError, match="'cifar' applies to the torchvision ResNets only"):
        build_method("simclr", "convnext_atto", "cifar")
    # evaluation's stem=auto gives a timm arch its own (ImageNet) stem at any input side
    random = resolve_encoder("random", "regnetx_002", "auto", input_side=32)
    assert random.meta["stem"] == "imagenet" and random.key == "random-regnetx_002-imagenet-s0"
    from sslseg.det.model import build_mask_rcnn

    with pytest.raises(SslsegError, match="Mask R-CNN takes the torchvision ResNets only"):
        build_mask_rcnn("convnext_atto")


def test_configs_refuse_a_bad_arch_before_reading_data():
    from sslseg.config import load_config
    from sslseg.det.train import DetectConfig
    from sslseg.seg.finetune import FinetuneConfig

    with pytest.raises(SslsegError, match="close: efficientnet_b0"):
        load_config(FinetuneConfig, None, ["arch=efficientnet-b0"])
    assert FinetuneConfig(arch="efficientnet_b0").arch == "efficientnet_b0"
    with pytest.raises(SslsegError, match="Mask R-CNN"):
        DetectConfig(arch="efficientnet_b0")


def test_imagenet_weights_offline_are_one_sentence(monkeypatch, tmp_path):
    # an empty cache and no network (never a real download from a test)
    import urllib.request

    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    for build in (
        lambda: build_unet("regnetx_002", "imagenet"),
        lambda: resolve_encoder("imagenet", "regnetx_002"),
    ):
        with pytest.raises(SslsegError, match="could not be downloaded by timm") as err:
            build()
        assert "\n" not in str(err.value)


def test_timm_export_without_its_sidecar_is_one_line(tmp_path):
    path = tmp_path / "encoder.pt"
    torch.save(encoder_state_dict(build_backbone("regnetx_002")), path)
    with pytest.raises(SslsegError, match="no encoder.json names a timm arch"):
        build_unet("regnetx_002", path)
    path.with_suffix(".json").write_text(json.dumps({"arch": "regnetx_00"}))
    with pytest.raises(SslsegError, match="encoder.json: config: arch: unknown .*close: regnetx_"):
        resolve_encoder(str(path))
