"""Policies: the study's names and aliases, their probabilities over many draws, the store
hook, and one explicit builder (no registry, no import cycle)."""

from __future__ import annotations

import inspect
import subprocess
import sys

import numpy as np
import pytest
import torch

from sslseg.augment import policies
from sslseg.augment.policies import build_view_maker
from sslseg.augment.saliency_view import CachedPainter, SaliencyLookup, SaliencyViews
from sslseg.augment.views import MultiView, ViewSpec, simclr_specs
from sslseg.data.store import open_store
from sslseg.errors import SslsegError

EXPECTED = {
    "default": (0.0, "default", 1),
    "saliency": (1.0, "geometry", 1),
    "saliency+default": (1.0, "default", 1),
    "saliency0.5+default": (0.5, "default", 1),
    "saliency+jitter": (1.0, "jitter", 1),
    "saliency0.5+jitter": (0.5, "jitter", 1),
    "saliency0.8+jitter0.8": (0.8, "jitter", 0.8),
}


def test_study_names_parse():
    assert list(EXPECTED) == list(policies.STUDY)
    for name, (p, after, third) in EXPECTED.items():
        pol = policies.parse_policy(name)
        assert (pol.name, pol.saliency, pol.after) == (name, p, after)
        if after == "jitter":
            assert pol.jitter == (third if name.endswith("0.8") else 1.0)
        assert pol.scale == 1
        big = policies.parse_policy(f"{name}-200p")
        assert big.scale == (1 if name == "default" else 2) and big.saliency == p
        assert name in policies.policy_names() and f"{name}-200p" in policies.policy_names()
    for bad in ("saliency+blur", "saliency2+default", "saliency+default0.5", "SGD", "sgd-300p"):
        with pytest.raises(SslsegError, match="policy"):
            policies.parse_policy(bad)


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("sgd", "saliency"),
        ("sgd+default", "saliency+default"),
        ("sgd0.5+default", "saliency0.5+default"),
        ("sgd+jitter", "saliency+jitter"),
        ("sgd0.5+jitter", "saliency0.5+jitter"),
        ("sgd0.8+jitter0.8", "saliency0.8+jitter0.8"),
        ("sgd+default-200p", "saliency+default-200p"),
    ],
)
def test_the_studys_sgd_names_are_aliases(alias, canonical):
    assert policies.parse_policy(alias) == policies.parse_policy(canonical)
    assert policies.parse_policy(alias).name == canonical
    policies.check_policy(alias)


def test_unknown_policy_is_a_one_line_error_naming_the_choices():
    with pytest.raises(SslsegError, match="unknown view policy 'nope'") as err:
        policies.check_policy("nope")
    assert "saliency+default" in str(err.value) and "\n" not in str(err.value)


def test_after_part_sets_the_photometric_probabilities():
    base = simclr_specs(128)  # blur and jitter on at this size
    assert policies.parse_policy("saliency+default").specs(base) == base
    (geo, _) = policies.parse_policy("saliency").specs(base)
    assert (geo.jitter, geo.grey, geo.blur, geo.solarize) == (0, 0, 0, 0)
    assert (geo.scale, geo.hflip) == (base[0].scale, base[0].hflip)
    (jit, _) = policies.parse_policy("saliency0.8+jitter0.8").specs(base)
    assert (jit.jitter, jit.grey, jit.blur) == (0.8, 0, 0)
    assert jit.brightness == base[0].brightness


def test_views_never_import_policies():
    # the import graph of augment/ is one way: policies -> views, saliency_view -> views
    code = (
        "import sys, sslseg.augment.views, sslseg.augment.saliency_view; "
        "assert 'sslseg.augment.policies' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_builder_takes_typed_keywords_only():
    params = inspect.signature(build_view_maker).parameters
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    assert list(params) == [
        "name",
        "specs",
        "store",
        "workers",
        "progress",
        "cache_root",
        "shuffle",
        "colour_offset",
        "generator",
        "painter",
    ]
    assert all(p.annotation is not inspect.Parameter.empty for p in params.values())


class _Counting(CachedPainter):
    chosen = 0

    def paint(self, prepared, rows, g, side):
        self.chosen += len(rows)
        return super().paint(prepared, rows, g, side)


class _FlatCache:
    scale = 1

    def __init__(self, n: int, side: int) -> None:
        self.labels = np.zeros((n, side, side), np.uint8)
        self.labels[:, :, side // 2 :] = 1
        self.palettes = np.tile(np.array([[[200, 10, 10], [10, 10, 200]]], np.uint8), (n, 1, 1))
        self.counts = np.full(n, 2, np.int32)


@pytest.mark.parametrize("p", [0.5, 0.8, 1.0])
def test_saliency_probability_is_honoured_over_many_draws(p):
    n, side, calls = 64, 8, 60
    spec = ViewSpec(size=8, jitter=0, grey=0, blur=0)
    painter = _Counting(SaliencyLookup(_FlatCache(n, side), np.arange(n)))
    maker = SaliencyViews([spec, spec], painter, p=p)
    batch = torch.full((n, 3, side, side), 128, dtype=torch.uint8)
    g = torch.Generator().manual_seed(1)
    for _ in range(calls):
        maker(batch, torch.arange(n), g)
    draws = 2 * n * calls  # 7680: binomial sd <= 0.006
    assert abs(painter.chosen / draws - p) < 0.025


def test_build_view_maker_fills_the_cache_from_the_store(tmp_path):
    store = open_store("sample", side=32, progress=False)
    specs = simclr_specs(16)
    assert isinstance(build_view_maker("default", specs, store=store), MultiView)
    assert isinstance(build_view_maker("default-200p", specs, store=store), MultiView)
    maker = build_view_maker(
        "sgd0.5+default", specs, store=store, workers=1, progress=False, cache_root=tmp_path
    )
    assert isinstance(maker, SaliencyViews) and maker.p == 0.5
    assert maker.painter.colour_offset == 0.1
    assert len(maker.painter.lookup.cache) == len(set(store.hashes))
    idx = np.array([0, 5, 7])
    batch = torch.from_numpy(np.array(store.images[idx])).permute(0, 3, 1, 2)
    views = maker(batch, torch.from_numpy(idx), torch.Generator().manual_seed(0))
    assert [tuple(v.shape) for v in views] == [(3, 3, 16, 16)] * 2
    assert all(torch.isfinite(v).all() for v in views)
    with pytest.raises(SslsegError, match="needs the training store"):
        build_view_maker("saliency", specs)
    # every key reaches the view maker
    quiet = build_view_maker(
        "sgd+jitter",
        specs,
        store=store,
        workers=1,
        progress=False,
        cache_root=tmp_path,
        shuffle=False,
        colour_offset=0.0,
    )
    assert (quiet.painter.shuffle, quiet.painter.colour_offset, quiet.p) == (False, 0.0, 1.0)
    assert [s.blur for s in quiet.specs] == [0.0, 0.0]


def test_progress_false_reaches_the_cache_fill_and_unknown_keys_are_refused(tmp_path, capfd):
    store = open_store("sample", side=32, progress=False).subset(np.arange(6))
    specs = simclr_specs(16)
    capfd.readouterr()
    build_view_maker("saliency", specs, store=store, workers=1, progress=False, cache_root=tmp_path)
    assert capfd.readouterr().err == ""  # no bar from the fill
    with pytest.raises(TypeError, match="worker"):
        build_view_maker("saliency", specs, store=store, worker=1, cache_root=tmp_path)
