"""The Pix2Pix proxy: network shapes, learning on a fixed batch, resume, the boundary
measure, its policies as views, and the online painter's equality with the cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sslseg.augment import policies
from sslseg.augment.pix2pix import (
    GeneratorPainter,
    PatchDiscriminator,
    UNetGenerator,
    default_layers,
    load_generator,
)
from sslseg.augment.pix2pix_train import (
    Pix2PixConfig,
    Pix2PixEpochs,
    boundaries,
    boundary_f,
    lr_factor,
    region_spread,
    train_pix2pix,
)
from sslseg.augment.saliency_view import OnlinePainter, SaliencyViews
from sslseg.augment.views import simclr_specs
from sslseg.data.store import open_store
from sslseg.errors import SslsegError
from sslseg.saliency.cache import fill_store

SIDE = 16


def _tiny(tmp, **kw) -> Pix2PixConfig:
    values = {
        "source": "sample",
        "side": SIDE,
        "epochs": 2,
        "batch_size": 16,
        "ngf": 4,
        "ndf": 4,
        "workers": 1,
        "examples": 2,
        "progress": False,
        "device": "cpu",
        "precision": "fp32",
        "out": str(tmp / "run"),
        "cache_root": str(tmp.parent / "saliency-cache"),
    }
    return Pix2PixConfig(**{**values, **kw})


@pytest.mark.parametrize("side", [16, 32, 64])
def test_generator_maps_images_to_images_in_range(side):
    g = UNetGenerator(side, ngf=8)
    y = g(torch.rand(2, 3, side, side) * 2 - 1)
    assert y.shape == (2, 3, side, side) and y.abs().max() <= 1
    d = PatchDiscriminator(8, default_layers(side))
    logits = d(torch.rand(2, 3, side, side), y)
    # two stride-2 convolutions (side / 4), then two 4 x 4 stride-1 ones (-1 each)
    assert logits.shape == (2, 1, side // 4 - 2, side // 4 - 2)


def test_the_256px_networks_are_the_papers():
    # pytorch-CycleGAN-and-pix2pix's unet_256 with ngf 64 has 54,414,531 parameters and its
    # 70 x 70 PatchGAN (n_layers 3) gives a 30 x 30 patch map at 256 px
    g = UNetGenerator(256)
    assert sum(p.numel() for p in g.parameters()) == 54_414_531
    assert sum(isinstance(m, torch.nn.Dropout) for m in g.modules()) == 3
    d = PatchDiscriminator(64, default_layers(256))
    assert d(torch.zeros(1, 3, 256, 256), torch.zeros(1, 3, 256, 256)).shape == (1, 1, 30, 30)


def test_sides_that_are_not_powers_of_two_are_refused():
    with pytest.raises(SslsegError, match="side: Pix2Pix needs a power-of-two side >= 8, got 48"):
        Pix2PixConfig(side=48)
    with pytest.raises(SslsegError, match="scale"):
        Pix2PixConfig(scale=3)


def test_a_few_steps_lower_the_l1_on_a_fixed_batch(tmp_path):
    config = _tiny(tmp_path, batch_size=8, ngf=8, ndf=8, lr=1e-3)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, SIDE, SIDE, 3), dtype=np.uint8)
    targets = np.repeat(images.mean(-1, keepdims=True).astype(np.uint8), 3, -1)
    empty = (images[:0], targets[:0])
    trainer = Pix2PixEpochs(config, images, targets, empty, torch.device("cpu"), "fp32")
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    y = torch.from_numpy(targets).permute(0, 3, 1, 2).float() / 127.5 - 1
    l1 = [float(trainer.step(x, y)[2]) for _ in range(30)]
    assert l1[-1] < 0.75 * l1[0]  # 0.280 -> 0.175 when written


def test_initial_weights_are_named_by_the_seed_alone(tmp_path):
    config = _tiny(tmp_path)
    empty = np.zeros((0, SIDE, SIDE, 3), np.uint8)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = Pix2PixEpochs(config, empty, empty, (empty, empty), torch.device("cpu"), "fp32")
    assert torch.equal(torch.rand(1), before)  # the caller's stream is not advanced
    torch.manual_seed(7)
    b = Pix2PixEpochs(config, empty, empty, (empty, empty), torch.device("cpu"), "fp32")
    for x, y in zip(a.state_dict()["generator"].values(), b.state_dict()["generator"].values()):
        assert torch.equal(x, y)


def test_the_schedule_is_constant_then_linear_to_zero():
    assert [lr_factor(e, 4) for e in range(4)] == pytest.approx([1.0, 1.0, 2 / 3, 1 / 3])
    assert lr_factor(99, 100) == pytest.approx(1 / 51)


class Killed(Exception):
    pass


def test_a_killed_run_resumes_to_the_uninterrupted_generator(tmp_path):
    whole = train_pix2pix(_tiny(tmp_path / "a"))

    def kill(epochs_done, record):
        if epochs_done == 1:
            raise Killed

    with pytest.raises(Killed):
        train_pix2pix(_tiny(tmp_path / "b"), after_epoch=kill)
    resumed = train_pix2pix(_tiny(tmp_path / "b"))
    a, meta = load_generator(whole)
    b, _ = load_generator(resumed)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name
    logs = [(p.parent / "log.jsonl").read_text().splitlines() for p in (whole, resumed)]
    strip = [[line.split('"seconds"')[0] for line in log] for log in logs]
    assert strip[0] == strip[1] and len(strip[0]) == 2
    assert meta["side"] == SIDE and meta["train_images"] > 0
    results = (whole.parent / "results.json").read_text()
    assert not (whole.parent / "last.pt").exists() and not (resumed.parent / "last.pt").exists()
    assert all(f'"{k}"' in results for k in ("l1", "boundary_f", "region_spread"))
    assert (whole.parent / "pix2pix_examples.png").stat().st_size > 0
    assert (whole.parent / "pix2pix_curves.png").stat().st_size > 0


def test_a_changed_config_is_refused_before_training(tmp_path):
    train_pix2pix(_tiny(tmp_path, epochs=1))
    with pytest.raises(SslsegError, match=r"another config \(l1_weight: 100.0 there, 10.0 now\)"):
        train_pix2pix(_tiny(tmp_path, epochs=1, l1_weight=10.0))


def test_boundary_f_by_hand():
    true = np.zeros((6, 6), bool)
    true[:, 2] = True
    shifted = np.roll(true, 1, axis=1)
    assert boundary_f(shifted, true, tolerance=1) == 1.0
    assert boundary_f(shifted, true, tolerance=0) == 0.0
    half = true.copy()
    half[3:, 2] = False  # precision 1, recall 1/2 -> F = 2/3
    assert boundary_f(half, true, tolerance=0) == pytest.approx(2 / 3)
    assert boundary_f(np.zeros_like(true), np.zeros_like(true)) == 1.0
    assert boundary_f(np.zeros_like(true), true) == 0.0


def test_region_spread_is_zero_for_flat_regions_and_the_texture_otherwise():
    true = np.zeros((1, 4, 4, 3), np.uint8)
    true[0, :, 2:] = 200  # two regions of 8 pixels
    flat = true.astype(np.float32) / 255
    assert region_spread(flat, true) == pytest.approx(0.0, abs=1e-12)
    textured = flat.copy()
    textured[0, ::2, :2] += 0.1  # left region: half at +0.1 -> sd 0.05 there, 0 on the right
    assert region_spread(textured, true) == pytest.approx(np.sqrt(0.05**2 / 2))


def test_boundaries_are_colour_steps_to_the_right_or_below():
    img = np.zeros((4, 4, 3), np.float32)
    img[:, 2:] = 0.5  # a step between columns 1 and 2
    edge = boundaries(img)
    assert edge[:, 1].all() and edge.sum() == 4
    ramp = np.broadcast_to(np.linspace(0, 0.12, 4, dtype=np.float32)[None, :, None], (4, 4, 3))
    assert not boundaries(ramp).any()  # steps of 0.04 stay below EDGE_STEP
    assert not boundaries(np.full((4, 4, 3), 0.3, np.float32)).any()


def test_pix2pix_policies_parse_and_refuse_what_they_cannot_do():
    pol = policies.parse_policy("pix2pix0.5+jitter")
    assert (pol.name, pol.saliency, pol.after, pol.painter) == (
        "pix2pix0.5+jitter",
        0.5,
        "jitter",
        "pix2pix",
    )
    online = policies.parse_policy("saliency+default-200p-online")
    assert (online.painter, online.scale, online.name) == (
        "online",
        2,
        "saliency+default-200p-online",
    )
    assert policies.parse_policy("sgd+default-online").painter == "online"
    for name in ("pix2pix+default", "pix2pix", "saliency+default-online"):
        assert name in policies.policy_names()
    for bad in ("pix2pix+default-200p", "pix2pix-online", "default-online"):
        with pytest.raises(SslsegError, match="policy"):
            policies.parse_policy(bad)
    with pytest.raises(SslsegError, match="needs a generator file"):
        policies.check_policy("pix2pix+default")
    with pytest.raises(SslsegError, match="only for pix2pix policies"):
        policies.check_policy("saliency", "generator.pt")


def test_the_pix2pix_policy_yields_views_in_range_painting_once_per_batch(tmp_path):
    path = train_pix2pix(_tiny(tmp_path, epochs=1, examples=0))
    with pytest.raises(SslsegError, match=f"learned {SIDE}-px images, this run's side is 32"):
        policies.check_policy("pix2pix+default", path, 32)
    maker = policies.build_view_maker("pix2pix", simclr_specs(SIDE), generator=path)
    assert isinstance(maker, SaliencyViews) and isinstance(maker.painter, GeneratorPainter)
    calls = []
    forward = maker.painter.generator.forward
    maker.painter.generator.forward = lambda x: calls.append(len(x)) or forward(x)
    batch = torch.randint(0, 256, (5, 3, SIDE, SIDE), dtype=torch.uint8)
    views = maker(batch, torch.arange(5), torch.Generator().manual_seed(0))
    assert calls == [5]  # both views from one generator pass
    assert [tuple(v.shape) for v in views] == [(5, 3, SIDE, SIDE)] * 2
    assert all(torch.isfinite(v).all() for v in views)
    painted = maker.painter.prepare(torch.arange(5), batch.float() / 255)
    assert painted.min() >= 0 and painted.max() <= 1
    # the painter the config check loaded is the one the views use (the file is read once)
    checked = policies.check_policy("pix2pix+default", path, SIDE)
    assert isinstance(checked, GeneratorPainter)
    reused = policies.build_view_maker(
        "pix2pix", simclr_specs(SIDE), generator=path, painter=checked
    )
    assert reused.painter is checked
    assert policies.check_policy("default") is None
    with pytest.raises(SslsegError, match="not a Pix2Pix generator file"):
        bad = tmp_path / "bad.pt"
        bad.write_bytes(b"not a checkpoint")
        load_generator(bad)


def test_the_online_painter_computes_the_caches_entries(tmp_path):
    store = open_store("sample", side=SIDE, progress=False)
    cache, rows = fill_store(store, 1, 1, False, root=tmp_path)
    idx = torch.tensor([3, 0, 7])
    images = torch.zeros(3, 3, SIDE, SIDE)
    labels, palettes, counts = OnlinePainter(store, workers=1).prepare(idx, images)
    r = rows[idx.numpy()]
    np.testing.assert_array_equal(labels.numpy(), np.asarray(cache.labels)[r])
    np.testing.assert_array_equal(counts.numpy(), np.asarray(cache.counts)[r])
    for b in range(3):
        k = int(counts[b])
        np.testing.assert_array_equal(palettes[b, :k].numpy(), np.asarray(cache.palettes)[r[b], :k])
