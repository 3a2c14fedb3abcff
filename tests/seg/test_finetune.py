import json
import subprocess
import sys

import numpy as np
import pytest

from sslseg.config import load_config
from sslseg.errors import SslsegError
from sslseg.runs import RunDir
from sslseg.seg.finetune import FinetuneConfig, finetune

TINY = ["source=sample", "side=32", "batch_size=16", "dev_fraction=0.5", "figures=2"]


def _config(out, *extra):
    return load_config(FinetuneConfig, None, [*TINY, f"out={out}", *extra])


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_resumed_run_equals_uninterrupted(tmp_path, precision):
    whole = finetune(_config(tmp_path / "whole", "epochs=3", f"precision={precision}"), False)
    # killed in epoch 3 after its log line, before its checkpoint; then the same command again
    part = tmp_path / "part"
    save = RunDir.save

    def killed(self, name, obj):
        if name == "last.pt" and obj["epoch"] == 3:
            raise KeyboardInterrupt
        save(self, name, obj)

    RunDir.save = killed
    try:
        with pytest.raises(KeyboardInterrupt):
            finetune(_config(part, "epochs=3", f"precision={precision}"), progress=False)
    finally:
        RunDir.save = save
    assert not (part / "results.json").exists()
    resumed = finetune(_config(part, "epochs=3", f"precision={precision}"), progress=False)
    assert resumed["compute_precision"] == precision
    for key in ("iou", "bce", "dice_loss", "best_epoch"):
        assert resumed[key] == pytest.approx(whole[key], rel=1e-5), key
    assert [r["epoch"] for r in RunDir(part).read_log()] == [1, 2, 3]
    # a finished run keeps no resume point (170 MB of weights and optimiser state)
    assert not (part / "last.pt").exists() and not (tmp_path / "whole" / "last.pt").exists()
    for name in (
        "config.yaml",
        "log.jsonl",
        "best.pt",
        "results.json",
        "predictions.png",
        "curves.png",
        "test_per_image.csv",
    ):
        assert (part / name).is_file(), name
    assert set(json.loads((part / "results.json").read_text())) >= {
        "iou",
        "f1",
        "dice_loss",
        "focal_loss",
        "bce",
        "recall",
        "accuracy",
        "precision",
    }


def test_finished_run_is_not_redone_and_config_clash_refused(tmp_path):
    out = tmp_path / "run"
    first = finetune(_config(out, "epochs=1"), progress=False)
    assert finetune(_config(out, "epochs=1"), progress=False) == first
    # a run made before the `precision` key existed is still the same run at its default
    saved = out / "config.yaml"
    saved.write_text("".join(x for x in saved.read_text().splitlines(True) if "precision" not in x))
    assert finetune(_config(out, "epochs=1"), progress=False) == first
    # progress shows a run and changes nothing in it: the finished run is returned
    assert finetune(_config(out, "epochs=1", "progress=false")) == first
    with pytest.raises(SslsegError, match="another config"):
        finetune(_config(out, "epochs=1", "precision=fp32"), progress=False)
    with pytest.raises(SslsegError, match="another config"):
        finetune(_config(out, "epochs=1", "lr=0.01"), progress=False)


@pytest.mark.parametrize(
    "override,message",
    [
        ("side=100", "side: 100 is not a positive multiple of 32"),
        ("colour=red", "colour"),
        ("epochs=0", "epochs"),
        ("lr=-1", "lr"),
        ("epochs=many", "epochs"),
        ("augment=rotate", "augment"),
        ("precision=fp16", "precision: 'fp16' is not one of auto, fp32, bf16"),
    ],
)
def test_bad_config_values_are_one_line(override, message):
    with pytest.raises(SslsegError, match=message):
        load_config(FinetuneConfig, None, [override])


def test_cli_bad_input_exits_cleanly(tmp_path):
    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    out = tmp_path / "never"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sslseg.cli",
            "finetune",
            "source=oxford-pet",
            f"root={empty}",
            f"out={out}",
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "no images found" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_split_file_matches_store_ids(tmp_path):
    finetune(_config(tmp_path / "r", "epochs=1"), progress=False)
    split = json.loads((tmp_path / "r" / "split.json").read_text())
    assert not set(split["test"]) & set(split["train"])
    assert len(split["test"]) == round(0.2 * 81)
    assert np.isfinite(json.loads((tmp_path / "r" / "results.json").read_text())["iou"])


def test_train_step_loss_is_fp32_under_bf16():
    import torch

    from sslseg.seg.finetune import train_step
    from sslseg.seg.metrics import masked_bce

    torch.manual_seed(0)
    model = torch.nn.Conv2d(3, 1, 3, padding=1)
    x = torch.randn(2, 3, 8, 8)
    y = torch.randint(0, 2, (2, 8, 8), dtype=torch.uint8)
    y[0, 0, 0] = 255  # ignored pixel
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        expected = masked_bce(model(x).float(), y)  # bf16 convolution, fp32 loss
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    loss = train_step(model, optimizer, x, y, "bf16")
    assert loss.dtype == torch.float32
    assert torch.equal(loss, expected)


def test_unet_starts_from_weights_the_seed_names(tmp_path, monkeypatch):
    import torch

    from sslseg.seg import finetune as finetune_module

    built = []

    def capture(config, store, split, model, *rest):
        built.append(model.state_dict())
        return {}

    monkeypatch.setattr(finetune_module, "_train", capture)
    finetune(_config(tmp_path / "a", "seed=3"), progress=False)
    torch.manual_seed(99)  # whatever ran before in this process ...
    state = torch.get_rng_state()
    finetune(_config(tmp_path / "b", "seed=3"), progress=False)
    assert torch.equal(torch.get_rng_state(), state)  # ... is neither reset nor advanced
    finetune(_config(tmp_path / "c", "seed=4"), progress=False)
    a, b, c = built
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for key in ("encoder.conv1.weight", "decoder.blocks.0.conv1.0.weight"):
        assert not torch.equal(a[key], c[key])


def test_flip_moves_image_and_mask_together():
    import torch

    from sslseg.seg.finetune import flip_batch

    y = torch.randint(0, 2, (16, 8, 8), dtype=torch.uint8)
    y[:, :, 0] = 255  # an asymmetric ignore column
    x = y[:, None].float().expand(16, 3, 8, 8)  # every channel shows the mask
    fx, fy = flip_batch(x, y, torch.Generator().manual_seed(0))
    flipped = (fy[:, :, -1] == 255).all(dim=1)
    assert 0 < int(flipped.sum()) < 16  # some flipped, some not
    assert torch.equal(fx, fy[:, None].float().expand(16, 3, 8, 8))


def test_an_encoder_pretrained_on_the_test_images_is_refused(tmp_path):
    from sslseg.backbones import build_resnet, save_encoder

    def exported(name, holdout):
        meta = {"arch": "resnet18", "stem": "imagenet", "data": {"source": "sample", "root": ""}}
        path = tmp_path / name / "encoder.pt"
        return str(save_encoder(build_resnet(), path, {**meta, "holdout": holdout}))

    everything = exported("all", None)
    with pytest.raises(SslsegError, match="was pretrained on 16 of the 16 test images"):
        finetune(_config(tmp_path / "a", "epochs=1", f"encoder={everything}"), False)
    assert not (tmp_path / "a").exists()
    # pretrained without seed 0's hold-out: accepted at seed 0, refused at seed 1
    held = exported("held", {"fraction": 0.2, "seed": 0})
    assert finetune(_config(tmp_path / "b", "epochs=1", f"encoder={held}"), False)["iou"] >= 0
    with pytest.raises(SslsegError, match="was pretrained on"):
        finetune(_config(tmp_path / "c", "epochs=1", f"encoder={held}", "seed=1"), False)
    opted = _config(tmp_path / "d", "epochs=1", f"encoder={everything}", "transductive=true")
    assert finetune(opted, False)["iou"] >= 0


def test_source_options_reach_the_source(tmp_path):
    from PIL import Image

    from sslseg.seg.finetune import open_finetune_store

    root = tmp_path / "seg"
    (root / "img").mkdir(parents=True)
    (root / "gt").mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
            root / "img" / f"{i}.png"
        )
        mask = np.zeros((32, 32), np.uint8)
        mask[:16] = 7  # foreground value 7, not 1 or 255
        Image.fromarray(mask).save(root / "gt" / f"{i}.png")
    keys = ["source=seg-folder", f"root={root}", "side=32", "progress=false"]
    with pytest.raises(SslsegError, match="no images found|folder not found"):
        open_finetune_store(load_config(FinetuneConfig, None, keys))
    options = "source_options={images: img, masks: gt, foreground_value: 7}"
    store = open_finetune_store(load_config(FinetuneConfig, None, [*keys, options]), False)
    assert len(store) == 3 and store.masks[:, :16].all() and not store.masks[:, 16:].any()
    with pytest.raises(SslsegError, match="source_options.border: set border= itself"):
        load_config(FinetuneConfig, None, ["source_options={border: ignore}"])


def test_epoch_batches_cover_every_image_once_and_never_leave_one_alone():
    from sslseg.seg.finetune import epoch_batches

    for n, size, sizes in ((17, 8, [8, 9]), (16, 8, [8, 8]), (18, 8, [8, 8, 2]), (1, 8, [1])):
        batches = epoch_batches(np.arange(n), size, seed=0, epoch=3)
        assert [len(b) for b in batches] == sizes
        assert sorted(np.concatenate(batches)) == list(range(n))
    a, b = (epoch_batches(np.arange(40), 8, seed=0, epoch=e) for e in (0, 1))
    assert not np.array_equal(np.concatenate(a), np.concatenate(b))  # reshuffled per epoch
