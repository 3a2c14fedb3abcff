"""The saliency ("SGD") view: cached region label maps repainted with fresh colours.

Rezaei et al. (seed study, section 3.3.2): the SaliencyCut segmentation of an image is the
same on every call except for its colours, so it is computed once (see
:mod:`sslseg.saliency.cache`) and, each time it is used, painted with "random color jittering
and swapping from the same color palette". Here, per image and per call:

1. **swap**: the image's ``K`` palette colours (the regions' mean RGB) are permuted at random
   among its ``K`` regions;
2. **offset**: every colour gets an independent uniform offset in
   ``[-colour_offset, colour_offset]`` per channel (in [0, 1] units), so even a one-region
   image changes colour;
3. **paint**: each pixel takes its region's new colour (one gather on the device).

Every region keeps its exact shape; only colours change. The painted image then *replaces* the
input image of a view and goes through the same geometric augmentation (random resized crop,
flip) as the image it replaces; :mod:`sslseg.augment.policies` decides the probability and which
photometric operations follow. A label map computed on the x2 upscaled image (the study's 200p)
is painted at 2S and area-averaged back to S, so the detail of the finer segmentation survives
as anti-aliased boundaries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from sslseg.augment.views import ViewSpec, make_view, to_float
from sslseg.errors import SslsegError

#: half-width of the uniform offset per channel (in [0, 1]) added to every palette entry on
#: each call. Not "jitter": in :class:`ViewSpec` and the policies, ``jitter`` is the
#: probability of colour jitter.
COLOUR_OFFSET = 0.1


def recolour(
    labels: Tensor,
    palettes: Tensor,
    counts: Tensor,
    g: torch.Generator,
    shuffle: bool = True,
    colour_offset: float = COLOUR_OFFSET,
) -> Tensor:
    """Paint label maps with shuffled, offset palette colours.

    Args:
        labels: ``B x H x W`` integer labels (``< counts[b]``).
        palettes: ``B x P x 3`` uint8 colours, entries ``>= counts[b]`` unused.
        counts: ``B`` number of labels of each image.
        g: generator every random draw comes from (on the device of ``labels``).
        shuffle: permute the palette among the regions of each image.
        colour_offset: half-width of the uniform per-colour, per-channel offset (0 = none).

    Returns:
        ``B x 3 x H x W`` float32 in [0, 1].
    """
    b, p, _ = palettes.shape
    device = labels.device
    pal = palettes.to(device=device, dtype=torch.float32).div_(255)
    if shuffle:
        # a random permutation of 0..K-1 per image: sort uniform keys, unused entries last
        keys = torch.rand(b, p, generator=g, device=device)
        unused = torch.arange(p, device=device)[None] >= counts.to(device)[:, None]
        order = keys.masked_fill_(unused, 2.0).argsort(1)
        pal = pal.gather(1, order[..., None].expand(b, p, 3))
    if colour_offset > 0:
        noise = torch.rand(b, p, 3, generator=g, device=device)
        noise = noise.mul_(2 * colour_offset).sub_(colour_offset)
        pal = pal.add_(noise).clamp_(0, 1)
    flat = labels.reshape(b, -1).long()
    out = pal.gather(1, flat[..., None].expand(-1, -1, 3))  # B x HW x 3
    return out.view(b, *labels.shape[1:], 3).permute(0, 3, 1, 2)


class SaliencyLookup:
    """Cached label maps + palettes of a store's images, fetched by store row onto a device.

    ``cache`` is a :class:`sslseg.saliency.cache.SaliencyCache` (or anything with ``labels``,
    ``palettes``, ``counts`` row arrays and ``scale``); ``rows[i]`` is the cache row of store
    image ``i``.
    """

    def __init__(self, cache: object, rows: np.ndarray) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        if (rows < 0).any():
            raise SslsegError(f"saliency view: {(rows < 0).sum()} store images are not cached")
        self.cache = cache
        self.rows = rows
        self.scale = int(getattr(cache, "scale", 1))

    def fetch(self, indices: Tensor, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        """(labels ``B x H x W``, palettes ``B x P x 3`` uint8, counts ``B``) on ``device``."""
        r = self.rows[indices.cpu().numpy()]
        order = np.argsort(r, kind="stable")  # memmap reads in file order
        inv = np.empty_like(order)
        inv[order] = np.arange(len(order))
        out = []
        for arr in (self.cache.labels, self.cache.palettes, self.cache.counts):
            t = torch.from_numpy(np.ascontiguousarray(arr[r[order]])[inv])
            if device.type == "cuda":
                t = t.pin_memory().to(device, non_blocking=True)
            out.append(t)
        return out[0], out[1], out[2]


class CachedPainter:
    """Saliency images from the cache: label maps fetched by store row, recoloured per call.

    ``prepare`` reads the rows of a batch once; ``paint`` recolours a subset of them (fresh
    colours on every call, so each view gets its own), painting a 200p map at 2S and
    area-averaging it to the view's side.
    """

    deterministic = False  # every paint draws new colours

    def __init__(
        self, lookup: SaliencyLookup, shuffle: bool = True, colour_offset: float = COLOUR_OFFSET
    ) -> None:
        self.lookup, self.shuffle, self.colour_offset = lookup, shuffle, colour_offset

    def prepare(self, indices: Tensor, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.lookup.fetch(indices, images.device)

    def paint(
        self, prepared: tuple[Tensor, Tensor, Tensor], rows: Tensor, g: torch.Generator, side: int
    ) -> Tensor:
        labels, palettes, counts = (t[rows] for t in prepared)
        x = recolour(labels, palettes, counts, g, self.shuffle, self.colour_offset)
        return pool_to(x, side)


def pool_to(x: Tensor, side: int) -> Tensor:
    """Area-average ``B x 3 x kS x kS`` images to ``side`` (a label map at 200p, say)."""
    if x.shape[-1] == side:
        return x
    factor = x.shape[-1] // side
    if factor * side != x.shape[-1]:
        raise SslsegError(
            f"saliency view: label maps of side {x.shape[-1]} do not match images of side {side}"
        )
    return F.avg_pool2d(x, factor)


def paint_regions(
    lookup: SaliencyLookup, indices: Tensor, device: torch.device, side: int
) -> Tensor:
    """The true region images (each region in its own mean colour) of store rows
    ``indices``, ``B x 3 x side x side`` float in [0, 1]: what the Pix2Pix proxy learns."""
    labels, palettes, counts = lookup.fetch(indices, device)
    g = torch.Generator(device=device)  # unused: no swap, no offset
    return pool_to(recolour(labels, palettes, counts, g, False, 0.0), side)


class OnlinePainter(CachedPainter):
    """Saliency images computed at every step: the cache's entries, without the cache.

    What the study's first version did before the hashed cache: each batch's images are
    analysed now (HC, RC, SaliencyCut, from their source images exactly as the cache fills an
    entry, on ``workers`` processes) and then recoloured like the cache's. Only for measuring
    what the cache saves; a run with it takes seconds per batch.
    """

    def __init__(
        self,
        store: Any,
        scale: int = 1,
        workers: int | None = None,
        shuffle: bool = True,
        colour_offset: float = COLOUR_OFFSET,
    ) -> None:
        from sslseg.saliency.cache import SOURCE_SIDE, StoreSources, default_workers
        from sslseg.saliency.cut import THRESHOLD

        self.shuffle, self.colour_offset = shuffle, colour_offset
        self.sources = StoreSources(store)
        self.rows, self.source_side, self.threshold = store.side * scale, SOURCE_SIDE, THRESHOLD
        self.workers = workers or default_workers()
        self._pool: Any = None

    def _analyse(self, indices: list[int]) -> list[tuple[np.ndarray, ...]]:
        from functools import partial

        from sslseg.saliency.cache.filling import entry_from_source, process_pool

        fn = partial(
            entry_from_source,
            rows=self.rows,
            resize=self.sources.resize,
            threshold=self.threshold,
            source_side=self.source_side,
        )
        sources = [self.sources(i) for i in indices]
        if self.workers == 1:
            return [fn(s) for s in sources]
        if self._pool is None:
            self._pool = process_pool(self.workers)
        return list(self._pool.map(fn, sources))

    def prepare(self, indices: Tensor, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        results = self._analyse([int(i) for i in indices.cpu()])
        size = max(len(r[1]) for r in results)
        palettes = np.zeros((len(results), size, 3), np.uint8)
        for b, r in enumerate(results):
            palettes[b, : len(r[1])] = r[1]
        labels = np.stack([r[0].astype(np.int64) for r in results])
        counts = np.array([len(r[1]) for r in results])
        return tuple(torch.from_numpy(a).to(images.device) for a in (labels, palettes, counts))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def __del__(self) -> None:
        self.close()


class SaliencyViews:
    """A view maker: each view's input is, with probability ``p``, a saliency image.

    ``painter`` makes the saliency images: :class:`CachedPainter` (the hashed cache),
    :class:`OnlinePainter` (SaliencyCut computed at every step) or
    :class:`~sslseg.augment.pix2pix.GeneratorPainter` (the Pix2Pix proxy).
    Its ``prepare(indices, images)`` runs once per call, for the whole batch, and only when
    some view uses a saliency image; ``paint(prepared, rows, g, side)`` then makes the images
    of batch positions ``rows`` for one view (a ``deterministic`` painter paints once per call
    and every view takes its rows of that). ``specs``: one :class:`ViewSpec` per view (geometry
    + photometric ops applied after the swap, whichever input was chosen). The draws per view
    are: the saliency coin per image, the painter's draws, then :func:`make_view`'s own.
    """

    def __init__(self, specs: Sequence[ViewSpec], painter: Any, p: float = 1.0) -> None:
        if not specs:
            raise SslsegError("views: a view maker needs at least one view")
        if not 0.0 <= p <= 1.0:
            raise SslsegError(f"policy: saliency probability {p} is outside [0, 1]")
        self.specs = list(specs)
        self.painter = painter
        self.p = p

    def __call__(self, batch_uint8: Tensor, indices: Tensor, g: torch.Generator) -> list[Tensor]:
        images = to_float(batch_uint8)
        n, device, side = images.shape[0], images.device, images.shape[-1]
        prepared: Any = None
        painted: Tensor | None = None
        views = []
        for spec in self.specs:
            use = torch.rand(n, generator=g, device=device) < self.p
            chosen = use.nonzero().squeeze(1)
            x = images
            if chosen.numel() > 0:
                if prepared is None:
                    prepared = self.painter.prepare(indices, images)
                if self.painter.deterministic:
                    if painted is None:
                        painted = self.painter.paint(prepared, torch.arange(n), g, side)
                    sal = painted if chosen.numel() == n else painted[chosen]
                else:
                    sal = self.painter.paint(prepared, chosen, g, side)
                if chosen.numel() == n:
                    x = sal
                else:
                    x = images.clone()
                    x[chosen] = sal
            views.append(make_view(x, spec, g))
        return views

    def __repr__(self) -> str:
        painter = type(self.painter).__name__
        return f"SaliencyViews(p={self.p}, painter={painter}, specs={self.specs!r})"
