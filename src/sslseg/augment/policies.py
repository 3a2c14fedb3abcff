"""The study's augmentation policies by name (Rezaei et al., seed study, section 3.4.2).

================== =========================== ==========================================
name               saliency view ("SGD")       after it (every view)
================== =========================== ==========================================
default            never                       the method's own views, unchanged
sgd                p = 1.0                     geometry only (crop, flip)
sgd+default        p = 1.0                     the method's own views (crop, flip, jitter,
                                               greyscale, blur, ...)
sgd0.5+default     p = 0.5                     the method's own views
sgd+jitter         p = 1.0                     geometry + colour jitter with p = 1.0
sgd0.5+jitter      p = 0.5                     geometry + colour jitter with p = 1.0
sgd0.8+jitter0.8   p = 0.8                     geometry + colour jitter with p = 0.8
================== =========================== ==========================================

Each has a ``-200p`` variant (``sgd+default-200p`` ...): the saliency segmentation is computed
on the x2 upscaled store image (the study's 200p), otherwise the same; ``default-200p`` is
``default``. The saliency probability is drawn per image and per view. "Geometry" is the
method's random resized crop and horizontal flip, applied to the saliency image exactly as to
the image it replaces (the study's "SGD with default augmentations" applies the defaults after
the segmentation, Fig. 8). "Jitter" is the method's colour-jitter strengths; greyscale, blur
and solarisation are off in the ``sgd``/``+jitter`` policies.

Policies register themselves in :data:`sslseg.augment.views.POLICIES` when this module is
imported, so ``build_view_maker(name, specs, store=store)`` finds them; the store gives the
content hashes, the saliency cache (:mod:`sslseg.saliency.cache`) is filled for any missing
image before training starts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sslseg.augment import views
from sslseg.augment.saliency_view import JITTER, SaliencyLookup, SaliencyViews
from sslseg.augment.views import ViewMaker, ViewSpec
from sslseg.errors import SslsegError

AFTER = ("default", "geometry", "jitter")


@dataclass(frozen=True)
class Policy:
    """``saliency``: probability a view's input is the recoloured saliency image. ``after``:
    ``default`` (method's views), ``geometry`` (crop + flip only) or ``jitter`` (crop + flip +
    colour jitter with probability ``jitter``). ``scale``: 1 = 100p, 2 = 200p."""

    name: str
    saliency: float
    after: str = "default"
    jitter: float = 1.0
    scale: int = 1

    def __post_init__(self) -> None:
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
    "sgd",
    "sgd+default",
    "sgd0.5+default",
    "sgd+jitter",
    "sgd0.5+jitter",
    "sgd0.8+jitter0.8",
)

_NAME = re.compile(
    r"^(?:(default)|sgd(\d*\.?\d+)?(?:\+(default|jitter)(\d*\.?\d+)?)?)"
    r"(?:-(100p|200p))?$"
)


def parse_policy(name: str) -> Policy:
    """The :class:`Policy` a name stands for (``sgd<p>+default``, ``sgd<p>+jitter<q>``, ...)."""
    m = _NAME.match(name)
    if not m:
        raise SslsegError(
            f"config: policy: unknown view policy '{name}' (choose from "
            f"{', '.join(policy_names())})"
        )
    is_default, p, after, q, res = m.groups()
    scale = 2 if res == "200p" else 1
    if is_default:
        return Policy(name, 0.0, "default", scale=1)
    if after != "jitter" and q is not None:
        raise SslsegError(f"config: policy: '{name}': only jitter takes a probability")
    after = {"default": "default", "jitter": "jitter", None: "geometry"}[after]
    return Policy(name, float(p) if p else 1.0, after, float(q) if q else 1.0, scale)


def policy_names() -> list[str]:
    """Every registered name: the study's seven and their 200p variants."""
    return [*STUDY, *(f"{n}-200p" for n in STUDY)]


def build_policy(
    name: str,
    specs: Sequence[ViewSpec],
    store: Any = None,
    workers: int | None = None,
    progress: bool = True,
    cache_root: Any = None,
    shuffle: bool = True,
    jitter: float = JITTER,
) -> ViewMaker:
    """The view maker of policy ``name`` for the method's ``specs`` over ``store``.

    Saliency policies fill the store's saliency cache first (misses only, ``workers``
    processes) and then read label maps by store row at every step.
    """
    policy = parse_policy(name)
    adapted = policy.specs(specs)
    if policy.saliency == 0.0:
        return views.MultiView(adapted)
    if store is None:
        raise SslsegError(
            f"config: policy: '{name}' needs the training store (its images' "
            "content hashes key the saliency cache)"
        )
    from sslseg.saliency.cache import fill_store

    cache, rows = fill_store(store, policy.scale, workers, progress, root=cache_root)
    return SaliencyViews(adapted, SaliencyLookup(cache, rows), policy.saliency, shuffle, jitter)


def _factory(name: str) -> Any:
    def factory(specs: Sequence[ViewSpec], **context: Any) -> ViewMaker:
        return build_policy(name, specs, **context)

    factory.__name__ = f"policy_{name}"
    return factory


def register() -> None:
    """Add every name of :func:`policy_names` to :data:`sslseg.augment.views.POLICIES`."""
    for name in policy_names():
        if name != "default":  # views owns "default"
            views.POLICIES.setdefault(name, _factory(name))


register()
