"""Saliency view: recolouring keeps every region boundary, changes colours, is batched."""

from __future__ import annotations

import numpy as np
import torch

from sslseg.augment.saliency_view import (
    COLOUR_OFFSET,
    CachedPainter,
    SaliencyLookup,
    SaliencyViews,
    recolour,
)
from sslseg.augment.views import ViewSpec
from sslseg.data.store import open_store
from sslseg.saliency.cache import SaliencyCache

SIDE = 32


def _cache(tmp_path, n: int = 4, scale: int = 1) -> tuple[SaliencyCache, np.ndarray]:
    images = np.array(open_store("sample", side=SIDE, progress=False).images[:n])
    cache = SaliencyCache(tmp_path / f"c{scale}", SIDE, scale=scale)
    cache.fill(images, workers=1, progress=False)
    return cache, images


def _edges(a: torch.Tensor) -> torch.Tensor:
    """Where neighbouring pixels differ (horizontal and vertical), for H x W (x C) maps."""
    if a.dim() == 3:
        h = (a[:, :, 1:] != a[:, :, :-1]).any(0)
        v = (a[:, 1:] != a[:, :-1]).any(0)
    else:
        h = a[:, 1:] != a[:, :-1]
        v = a[1:] != a[:-1]
    return torch.cat([h.flatten(), v.flatten()])


def test_two_recolourings_share_boundaries_and_differ_in_colour(tmp_path):
    cache, _ = _cache(tmp_path)
    lab = torch.from_numpy(np.array(cache.labels))
    pal = torch.from_numpy(np.array(cache.palettes))
    cnt = torch.from_numpy(np.array(cache.counts))
    g = torch.Generator().manual_seed(0)
    a = recolour(lab, pal, cnt, g)
    b = recolour(lab, pal, cnt, g)
    assert a.shape == (4, 3, SIDE, SIDE) and a.dtype == torch.float32
    for i in range(4):
        k = int(cnt[i])
        assert k >= 2
        boundary = _edges(lab[i])
        # every region boundary, and only those, shows in both recolourings
        assert torch.equal(_edges(a[i]), boundary)
        assert torch.equal(_edges(b[i]), boundary)
        # each region is one flat colour, and that colour changed between the two calls
        colours_a = torch.stack([a[i][:, lab[i] == r][:, 0] for r in range(k)])
        colours_b = torch.stack([b[i][:, lab[i] == r][:, 0] for r in range(k)])
        for r in range(k):
            assert (a[i][:, lab[i] == r] == colours_a[r][:, None]).all()
        assert (colours_a - colours_b).abs().amax(1).gt(1e-3).all()
        # colours still come from the image's palette (swapped, offset by at most COLOUR_OFFSET)
        own = pal[i, :k].float() / 255
        nearest = (colours_a[:, None] - own[None]).abs().amax(2).amin(1)
        assert nearest.max() <= COLOUR_OFFSET + 1e-6


def test_saliency_views_are_seeded_and_batched(tmp_path):
    cache, images = _cache(tmp_path)
    lookup = SaliencyLookup(cache, np.array([3, 2, 1, 0]))  # store row i -> cache row 3 - i
    maker = SaliencyViews([ViewSpec(size=16), ViewSpec(size=16)], CachedPainter(lookup), p=1.0)
    batch = torch.from_numpy(images[::-1].copy()).permute(0, 3, 1, 2)
    idx = torch.tensor([0, 2])
    v1 = maker(batch[[0, 2]], idx, torch.Generator().manual_seed(5))
    v2 = maker(batch[[0, 2]], idx, torch.Generator().manual_seed(5))
    assert len(v1) == 2 and v1[0].shape == (2, 3, 16, 16)
    assert all(torch.equal(x, y) for x, y in zip(v1, v2, strict=True))
    # the fetched label maps are those of the requested store rows (in request order)
    labels, _, _ = lookup.fetch(idx, torch.device("cpu"))
    np.testing.assert_array_equal(labels.numpy(), np.array(cache.labels)[[3, 1]])


def test_200p_label_maps_are_painted_at_2x_and_pooled(tmp_path):
    cache, images = _cache(tmp_path, n=2, scale=2)
    maker = SaliencyViews(
        [
            ViewSpec(
                size=SIDE,
                scale=(1.0, 1.0),
                ratio=(1.0, 1.0),
                hflip=0,
                jitter=0,
                grey=0,
                blur=0,
                mean=(0, 0, 0),
                std=(1, 1, 1),
            )
        ],
        CachedPainter(SaliencyLookup(cache, np.arange(2)), shuffle=False, colour_offset=0.0),
        p=1.0,
    )
    batch = torch.from_numpy(images).permute(0, 3, 1, 2)
    (view,) = maker(batch, torch.arange(2), torch.Generator().manual_seed(0))
    painted = np.array(cache.palettes[0])[np.array(cache.labels[0])].astype(np.float32) / 255
    pooled = painted.reshape(SIDE, 2, SIDE, 2, 3).mean((1, 3))
    np.testing.assert_allclose(view[0].permute(1, 2, 0).numpy(), pooled, atol=2e-3)
