"""The study's augmentation policies by name (Rezaei et al., seed study, section 3.4.2).

========================== ============================ ====================================
name                       saliency view                after it (every view)
========================== ============================ ====================================
default                    never                        the method's own views, unchanged
saliency                   p = 1.0                      geometry only (crop, flip)
saliency+default           p = 1.0                      the method's own views (crop, flip,
                                                        jitter, greyscale, blur, ...)
saliency0.5+default        p = 0.5                      the method's own views
saliency+jitter            p = 1.0                      geometry + colour jitter, p = 1.0
saliency0.5+jitter         p = 0.5                      geometry + colour jitter, p = 1.0
saliency0.8+jitter0.8      p = 0.8                      geometry + colour jitter, p = 0.8
========================== ============================ ====================================

The study calls the saliency view "SGD" (section 3.3.2); its names
``sgd``, ``sgd+default``, ``sgd0.5+jitter``, ... are accepted as aliases of the
``saliency…`` names (``sgd`` is also an optimiser here, hence the rename). Each name has a
``-200p`` variant (``saliency+default-200p`` ...): the saliency segmentation is computed on the
x2 upscaled store image (the study's 200p), otherwise the same; ``default-200p`` is
``default``. The saliency probability is drawn per image and per view. "Geometry" is the
method's random resized crop and horizontal flip, applied to the saliency image exactly as to
the image it replaces (the study's "SGD with default augmentations" applies the defaults after
the segmentation, Fig. 8). "Jitter" is the method's colour-jitter strengths, and the number
after it its probability; greyscale, blur and solarisation are off in the ``saliency`` and
``+jitter`` policies.

One word, one meaning: ``jitter`` is always the probability of colour jitter (as in
:class:`~sslseg.augment.views.ViewSpec`); the per-colour offset of the saliency recolouring is
``colour_offset``.

:func:`build_view_maker` is the one function that turns a policy name into a view maker; the
store gives the content hashes, and the saliency cache (:mod:`sslseg.saliency.cache`) is filled
for any missing image before training starts. This module imports
:mod:`sslseg.augment.views`, never the other way round.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from sslseg.augment.saliency_view import (
    COLOUR_OFFSET,
    CachedPainter,
    OnlinePainter,
    SaliencyLookup,
    SaliencyViews,
)
from sslseg.augment.views import MultiView, ViewMaker, ViewSpec
from sslseg.errors import SslsegError

if TYPE_CHECKING:
    from sslseg.augment.pix2pix import GeneratorPainter
    from sslseg.data.store import Store

AFTER = ("default", "geometry", "jitter")
#: where saliency images come from: the hashed cache, SaliencyCut at every step, Pix2Pix
PAINTERS = ("cache", "online", "pix2pix")


@dataclass(frozen=True)
class Policy:
    """``name``: the canonical name (``saliency…``, never the ``sgd…`` alias). ``saliency``:
    probability a view's input is the recoloured saliency image. ``after``: ``default``
    (method's views), ``geometry`` (crop + flip only) or ``jitter`` (crop + flip + colour
    jitter with probability ``jitter``). ``scale``: 1 = 100p, 2 = 200p."""

    name: str
    saliency: float
    after: str = "default"
    jitter: float = 1.0
    scale: int = 1
    painter: str = "cache"

    def __post_init__(self) -> None:
        if self.painter not in PAINTERS:
            raise SslsegError(f"policy: {self.name}: painter '{self.painter}' not in {PAINTERS}")
        if self.after not in AFTER:
            raise SslsegError(f"policy: {self.name}: after '{self.after}' not in {AFTER}")
        for key in ("saliency", "jitter"):
            v = getattr(self, key)
            if not 0.0 <= v <= 1.0:
                raise SslsegError(f"policy: {self.name}: {key} probability {v} not in [0, 1]")
        if self.scale not in (1, 2):
            raise SslsegError(f"policy: {self.name}: scale {self.scale} is not 1 or 2")

    def specs(self, specs: Sequence[ViewSpec]) -> list[ViewSpec]:
        """The method's view specs adapted to this policy's "after" part."""
        if self.after == "default":
            return list(specs)
        jitter = self.jitter if self.after == "jitter" else 0.0
        return [replace(s, jitter=jitter, grey=0.0, blur=0.0, solarize=0.0) for s in specs]


#: the study's seven policies (100p); :func:`parse_policy` adds the ``-200p`` variants
STUDY: tuple[str, ...] = (
    "default",
    "saliency",
    "saliency+default",
    "saliency0.5+default",
    "saliency+jitter",
    "saliency0.5+jitter",
    "saliency0.8+jitter0.8",
)
#: the study's own word for the saliency view, accepted in place of ``saliency``
ALIAS = "sgd"
#: the word of the policies whose saliency image comes from the Pix2Pix proxy
PIX2PIX = "pix2pix"

_NAME = re.compile(
    r"^(?:(default)|(saliency|sgd|pix2pix)(\d*\.?\d+)?(?:\+(default|jitter)(\d*\.?\d+)?)?)"
    r"(?:-(100p|200p))?(?:-(online))?$"
)


def parse_policy(name: str) -> Policy:
    """The :class:`Policy` a name stands for (``saliency<p>+default``,
    ``saliency<p>+jitter<q>``, their ``sgd…`` aliases, ``-200p`` variants)."""
    m = _NAME.match(name)
    if not m:
        raise SslsegError(
            f"config: policy: unknown view policy '{name}' (choose from "
            f"{', '.join(policy_names())}; '{ALIAS}' may stand for 'saliency')"
        )
    is_default, word, p, after, q, res, online = m.groups()
    scale = 2 if res == "200p" else 1
    if is_default:
        if online:
            raise SslsegError(f"config: policy: '{name}': default has no saliency to compute")
        return Policy(name, 0.0, "default", scale=1)
    if after != "jitter" and q is not None:
        raise SslsegError(f"config: policy: '{name}': only jitter takes a probability")
    painter = "online" if online else "cache"
    if word == PIX2PIX:
        if res or online:
            raise SslsegError(
                f"config: policy: '{name}': a pix2pix policy takes neither -100p/-200p nor "
                "-online (the generator file says which region images it learned)"
            )
        canonical, painter = name, "pix2pix"
    else:
        canonical = "saliency" + name[len(word) :]
    after = {"default": "default", "jitter": "jitter", None: "geometry"}[after]
    return Policy(canonical, float(p) if p else 1.0, after, float(q) if q else 1.0, scale, painter)


def policy_names() -> list[str]:
    """The canonical names: the study's seven, their 200p variants, then the Pix2Pix and
    online forms of the saliency ones (``-online`` also follows ``-200p``)."""
    saliency = [n for n in STUDY if n != "default"]
    return [
        *STUDY,
        *(f"{n}-200p" for n in STUDY),
        *(PIX2PIX + n[len("saliency") :] for n in saliency),
        *(f"{n}-online" for n in saliency),
    ]


def check_policy(
    name: str, generator: str | Path | None = None, side: int = 0
) -> GeneratorPainter | None:
    """One-line config error unless ``name`` is a policy and, for a pix2pix policy,
    ``generator`` a generator file of images of ``side`` (used before anything is written).
    Returns a pix2pix policy's painter, loaded once (``build_view_maker(painter=…)``)."""
    policy = parse_policy(name)
    if policy.painter != "pix2pix":
        if generator:
            raise SslsegError(
                f"config: pix2pix: a generator file is only for pix2pix policies, not '{name}'"
            )
        return None
    painter = generator_painter(name, generator)
    learned = painter.generator.side
    if side and learned != side:
        raise SslsegError(
            f"config: pix2pix: {generator} learned {learned}-px images, this run's side is "
            f"{side} (train a generator at side={side})"
        )
    return painter


def build_view_maker(
    name: str,
    specs: Sequence[ViewSpec],
    *,
    store: Store | None = None,
    workers: int | None = None,
    progress: bool = True,
    cache_root: str | Path | None = None,
    shuffle: bool = True,
    colour_offset: float = COLOUR_OFFSET,
    generator: str | Path | None = None,
    painter: GeneratorPainter | None = None,
) -> ViewMaker:
    """The view maker of policy ``name`` for the method's ``specs`` over ``store``.

    ``default`` (and any policy with saliency probability 0) applies the adapted specs.
    Saliency policies first fill the store's saliency cache (misses only, ``workers``
    processes, a progress bar unless ``progress`` is false, under ``cache_root`` or the
    default cache folder) and then read label maps by store row at every step; ``shuffle``
    and ``colour_offset`` are the recolouring's palette swap and per-colour offset.
    ``…-online`` policies compute those entries at every step instead (no cache), and
    ``pix2pix…`` policies paint with the generator file ``generator`` (``sslseg pix2pix``),
    or with ``painter``, the one :func:`check_policy` loaded from it.
    """
    policy = parse_policy(name)
    adapted = policy.specs(specs)
    if policy.saliency == 0.0:
        return MultiView(adapted)
    if policy.painter == "pix2pix":
        painter = painter or generator_painter(name, generator)
        return SaliencyViews(adapted, painter, policy.saliency)
    check_policy(name, generator)  # a generator file given to another policy is an error
    if store is None:
        raise SslsegError(
            f"config: policy: '{name}' needs the training store (its images' "
            "content hashes key the saliency cache)"
        )
    if policy.painter == "online":
        online = OnlinePainter(store, policy.scale, workers, shuffle, colour_offset)
        return SaliencyViews(adapted, online, policy.saliency)
    from sslseg.saliency.cache import fill_store

    cache, rows = fill_store(store, policy.scale, workers, progress, root=cache_root)
    cached = CachedPainter(SaliencyLookup(cache, rows), shuffle, colour_offset)
    return SaliencyViews(adapted, cached, policy.saliency)


def generator_painter(name: str, generator: str | Path | None) -> GeneratorPainter:
    """The painter of a pix2pix policy from its generator file (one line if there is none)."""
    if not generator:
        raise SslsegError(
            f"config: pix2pix: policy '{name}' needs a generator file (pix2pix=PATH of a "
            "generator.pt written by `sslseg pix2pix`)"
        )
    from sslseg.augment.pix2pix import GeneratorPainter, load_generator

    net, _ = load_generator(generator)
    return GeneratorPainter(net)
