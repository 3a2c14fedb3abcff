"""Each method's views are chosen by the view size (docs/methods.md, "Views by size").

The expected values are written out by hand from the sources the docs cite: at most 96 px
lightly's CIFAR-10 benchmark (``docs/source/getting_started/benchmarks/cifar10_benchmark.py``)
and solo-learn's ``scripts/pretrain/cifar/augmentations/*.yaml``; above it the papers' values
with sigma in [0.1, 2.0] px at 224 px scaled to the side.
"""

from __future__ import annotations

import pytest

from sslseg.augment import views as V
from sslseg.ssl.registry import REGISTRY

SMALL = (8, 32, 64, 96)
LARGE = (97, 128, 224)


def _row(spec: V.ViewSpec) -> tuple:
    """(crop scale, jitter p, effective b/c/s/h, grey, blur p, solarize)."""
    s = spec.strength
    jitter = tuple(
        round(s * x, 6) for x in (spec.brightness, spec.contrast, spec.saturation, spec.hue)
    )
    return (spec.scale, spec.jitter, jitter, spec.grey, spec.blur, spec.solarize)


# (crop scale, jitter p, b/c/s/h after strength, grey p, blur p, solarize p) per view
SIMCLR_SMALL = ((0.08, 1.0), 0.8, (0.4, 0.4, 0.4, 0.1), 0.2, 0.0, 0.0)
SIMCLR_LARGE = ((0.08, 1.0), 0.8, (0.8, 0.8, 0.8, 0.2), 0.2, 0.5, 0.0)
BYOL_SMALL = (
    ((0.08, 1.0), 0.8, (0.4, 0.4, 0.2, 0.1), 0.2, 0.0, 0.0),
    ((0.08, 1.0), 0.8, (0.4, 0.4, 0.2, 0.1), 0.2, 0.0, 0.2),
)
BYOL_LARGE = (
    ((0.08, 1.0), 0.8, (0.4, 0.4, 0.2, 0.1), 0.2, 1.0, 0.0),
    ((0.08, 1.0), 0.8, (0.4, 0.4, 0.2, 0.1), 0.2, 0.1, 0.2),
)
EXPECTED = {
    "simclr": ((SIMCLR_SMALL, SIMCLR_SMALL), (SIMCLR_LARGE, SIMCLR_LARGE)),
    "moco": (
        (((0.08, 1.0), 0.8, (0.4, 0.4, 0.4, 0.1), 0.2, 0.0, 0.0),) * 2,
        (((0.2, 1.0), 0.8, (0.4, 0.4, 0.4, 0.1), 0.2, 0.5, 0.0),) * 2,
    ),
    "byol": (BYOL_SMALL, BYOL_LARGE),
    "simsiam": (
        (((0.2, 1.0), 0.8, (0.4, 0.4, 0.4, 0.1), 0.2, 0.0, 0.0),) * 2,
        (((0.2, 1.0), 0.8, (0.4, 0.4, 0.4, 0.1), 0.2, 0.5, 0.0),) * 2,
    ),
    "swav": (
        (((0.14, 1.0), 0.8, (0.4, 0.4, 0.4, 0.1), 0.2, 0.0, 0.0),) * 2,
        (((0.14, 1.0), 0.8, (0.8, 0.8, 0.8, 0.2), 0.2, 0.5, 0.0),) * 2,
    ),
    "barlow_twins": (BYOL_SMALL, BYOL_LARGE),
}


def test_every_method_has_hand_checked_views():
    assert sorted(EXPECTED) == sorted(REGISTRY)


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("side", SMALL + LARGE)
def test_views_by_side(name, side):
    small, large = EXPECTED[name]
    specs = REGISTRY[name].view_specs(side)
    assert [s.size for s in specs] == [side] * len(specs)
    assert tuple(_row(s) for s in specs) == (small if side <= 96 else large)
    for s in specs:
        # the ratio, flip and normalisation never depend on the size
        assert (s.ratio, s.hflip) == ((3 / 4, 4 / 3), 0.5)
        assert (s.mean, s.std) == (V.IMAGENET_MEAN, V.IMAGENET_STD)


@pytest.mark.parametrize(
    ("side", "sigma"),
    [(224, (0.1, 2.0)), (128, (0.1 * 128 / 224, 2.0 * 128 / 224)), (448, (0.2, 4.0))],
)
def test_blur_sigma_is_the_papers_relative_to_224_px(side, sigma):
    assert V.paper_sigma(side) == pytest.approx(sigma)
    for cls in REGISTRY.values():
        for spec in cls.view_specs(side):
            assert spec.sigma == pytest.approx(sigma)


def test_the_boundary_is_96_px_and_explicit_values_win():
    assert V.SMALL_SIDE == 96 and V.is_small(96) and not V.is_small(97)
    (spec, _) = V.simclr_specs(64, strength=1.0, blur=0.5)
    assert (spec.strength, spec.blur) == (1.0, 0.5)
    (spec, _) = V.simclr_specs(224, strength=0.5, blur=0.0)
    assert (spec.strength, spec.blur) == (0.5, 0.0)
