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


class SaliencyViews:
    """A view maker: each view's input is, with probability ``p``, the recoloured saliency image.

    ``specs``: one :class:`ViewSpec` per view (geometry + photometric ops applied after the
    swap, whichever input was chosen). The draws per view are: the saliency coin per image,
    the recolouring of the chosen images, then :func:`make_view`'s own draws.
    """

    def __init__(
        self,
        specs: Sequence[ViewSpec],
        lookup: SaliencyLookup,
        p: float = 1.0,
        shuffle: bool = True,
        colour_offset: float = COLOUR_OFFSET,
    ) -> None:
        if not specs:
            raise SslsegError("views: a view maker needs at least one view")
        if not 0.0 <= p <= 1.0:
            raise SslsegError(f"policy: saliency probability {p} is outside [0, 1]")
        self.specs = list(specs)
        self.lookup = lookup
        self.p = p
        self.shuffle = shuffle
        self.colour_offset = colour_offset

    def saliency_images(
        self, indices: Tensor, device: torch.device, g: torch.Generator, out_size: int
    ) -> Tensor:
        """Recoloured saliency images of ``indices`` as ``B x 3 x out x out`` float."""
        labels, palettes, counts = self.lookup.fetch(indices, device)
        x = recolour(labels, palettes, counts, g, self.shuffle, self.colour_offset)
        if x.shape[-1] != out_size:
            factor = x.shape[-1] // out_size
            if factor * out_size != x.shape[-1]:
                raise SslsegError(
                    f"saliency view: label maps of side {x.shape[-1]} do not "
                    f"match images of side {out_size}"
                )
            x = F.avg_pool2d(x, factor)
        return x

    def __call__(self, batch_uint8: Tensor, indices: Tensor, g: torch.Generator) -> list[Tensor]:
        images = to_float(batch_uint8)
        n, device, side = images.shape[0], images.device, images.shape[-1]
        views = []
        for spec in self.specs:
            use = torch.rand(n, generator=g, device=device) < self.p
            chosen = use.nonzero().squeeze(1)
            x = images
            if chosen.numel() == n:
                x = self.saliency_images(indices, device, g, side)
            elif chosen.numel() > 0:
                x = images.clone()
                x[chosen] = self.saliency_images(indices[chosen.cpu()], device, g, side)
            views.append(make_view(x, spec, g))
        return views

    def __repr__(self) -> str:
        return f"SaliencyViews(p={self.p}, specs={self.specs!r})"
