import json
from urllib.error import URLError

import numpy as np
import pytest
import torch

from sslseg.backbones import build_resnet, save_encoder
from sslseg.data.store import open_store
from sslseg.errors import SslsegError
from sslseg.eval import features as feat
from sslseg.eval.features import cached_features, extract_features, resolve_encoder


def test_random_encoder_is_seeded_and_stem_follows_input_side():
    a = resolve_encoder("random", seed=1, input_side=32)
    b = resolve_encoder("random", seed=1, input_side=32)
    c = resolve_encoder("random", seed=2, input_side=32)
    assert a.meta["stem"] == "cifar" and a.key != c.key and a.key == b.key
    assert torch.equal(a.model.conv1.weight, b.model.conv1.weight)
    assert not torch.equal(a.model.conv1.weight, c.model.conv1.weight)
    assert resolve_encoder("random", input_side=96).meta["stem"] == "imagenet"


def test_exported_encoder_round_trips_and_is_keyed_by_content(tmp_path):
    torch.manual_seed(0)
    model = build_resnet("resnet18", "cifar")
    path = save_encoder(
        model,
        tmp_path / "run-a" / "encoder.pt",
        {"arch": "resnet18", "stem": "cifar", "method": "simclr"},
    )
    enc = resolve_encoder(str(path.parent))  # a run folder is accepted too
    assert enc.name == "run-a" and enc.meta["method"] == "simclr"
    assert torch.equal(enc.model.layer4[1].conv2.weight, model.layer4[1].conv2.weight)
    copy = tmp_path / "copy.pt"
    copy.write_bytes(path.read_bytes())
    assert resolve_encoder(str(copy)).key == enc.key


def test_unknown_encoder_path_is_one_clear_error(tmp_path):
    with pytest.raises(SslsegError, match="encoder file not found"):
        resolve_encoder(str(tmp_path / "nope" / "encoder.pt"))
    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    with pytest.raises(SslsegError, match="bad.pt"):
        resolve_encoder(str(bad))


def test_imagenet_offline_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def offline(self, progress=True, check_hash=False):
        raise URLError("no network")

    monkeypatch.setattr(
        type(feat.torchvision.models.ResNet18_Weights.IMAGENET1K_V1), "get_state_dict", offline
    )
    with pytest.raises(SslsegError, match="^imagenet: .*not in the torch hub cache"):
        resolve_encoder("imagenet")


def test_features_shape_resize_and_cache(image_folder, tmp_path):
    store = open_store("image-folder", image_folder, side=16, cache=tmp_path / "c", progress=False)
    enc = resolve_encoder("random", input_side=16)
    f1, hit1 = cached_features(enc, store.images, store.root, tmp_path / "f", batch_size=10)
    f2, hit2 = cached_features(enc, store.images, store.root, tmp_path / "f", batch_size=10)
    assert f1.shape == (24, 512) and f1.dtype == np.float32
    assert (hit1, hit2) == (False, True) and np.array_equal(f1, f2)
    sidecar = json.loads(next((tmp_path / "f").rglob("*.json")).read_text())
    assert sidecar["shape"] == [24, 512]
    # Same images, other input side: another cache entry with other features.
    f3, hit3 = cached_features(enc, store.images, store.root, tmp_path / "f", input_side=24)
    assert not hit3 and not np.allclose(f1, f3)
    # Batching does not change the result (eval-mode BatchNorm).
    direct = extract_features(enc.model, store.images, batch_size=7)
    assert np.allclose(direct, f1, atol=1e-5)
