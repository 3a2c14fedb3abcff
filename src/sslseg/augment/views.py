"""Batched, seeded augmentation views on the training device.

A *view* turns a uint8 batch ``B x 3 x H x W`` (already on the training device) into a float,
normalised batch ``B x 3 x size x size``. Every random draw comes from the ``torch.Generator``
passed in, so a run is reproducible and a resumed run draws exactly what an uninterrupted one
would. All work is done on whole batches, and every operation is linear per image, so each is
one batched matrix product with per-image matrices: crop + resize + flip is ``Ry @ x @ Rx^T``,
a Gaussian blur is ``B @ x @ B^T``, brightness/contrast/saturation/hue/greyscale are 3x3 colour
matrices. On a 2-core CPU that is about an order of magnitude cheaper than kornia's
``augmentation`` modules (HSV round trip, grouped convolutions, ``grid_sample``) on the same
batch, which matters because the views must stay within a few percent of the model step; the
tests check the blur against ``kornia.filters.gaussian_blur2d`` and the crop against kornia's
``crop_and_resize``. There is no per-image PIL work and no DataLoader worker.

The defaults of :class:`ViewSpec` are SimCLR's ImageNet values (Chen et al., 2020, "A Simple
Framework for Contrastive Learning of Visual Representations", appendix A; the same values as
lightly's ``SimCLRTransform``): random resized crop with scale (0.08, 1) and ratio (3/4, 4/3),
horizontal flip p=0.5, colour jitter (0.8, 0.8, 0.8, 0.2) x strength with p=0.8, random
greyscale p=0.2, Gaussian blur with sigma in (0.1, 2) px with p=0.5, ImageNet normalisation.
The methods' views choose by size (:func:`is_small`, :func:`paper_sigma`): at most
:data:`SMALL_SIDE` px they follow the CIFAR-scale recipes of lightly's and solo-learn's
benchmarks (no blur, jitter strength 0.5 where they use it), above it the papers' recipes
with the blur sigma scaled from 224 px to the view's side.

A *view maker* is any callable ``(batch_uint8, indices, generator) -> list[Tensor]``; the
training loop only knows that signature. :class:`MultiView` applies a list of specs (two equal
ones for SimCLR; asymmetric ones for BYOL; several small crops for SwAV). Named policies (the
saliency view) are built by :func:`sslseg.augment.policies.build_view_maker`; this module
never imports that one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from sslseg.backbones import IMAGENET_MEAN, IMAGENET_STD
from sslseg.errors import SslsegError

ViewMaker = Callable[[Tensor, Tensor, torch.Generator], list[Tensor]]


@dataclass(frozen=True)
class ViewSpec:
    """Parameters of one augmentation view (probabilities are per image).

    ``size``: output side in px. ``scale``/``ratio``: random resized crop area fraction and
    aspect-ratio range. ``hflip``: flip probability. ``jitter``: probability of colour jitter
    with ``brightness``/``contrast``/``saturation``/``hue`` (torchvision meaning, multiplied by
    ``strength``; SimCLR uses strength 1.0, 0.5 for CIFAR). ``grey``: greyscale probability.
    ``blur``: Gaussian blur probability, ``sigma`` its range in output pixels. ``solarize``:
    probability of solarising at 0.5 (BYOL's second view). ``mean``/``std``: normalisation.
    """

    size: int = 64
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: float = 0.5
    jitter: float = 0.8
    strength: float = 1.0
    brightness: float = 0.8
    contrast: float = 0.8
    saturation: float = 0.8
    hue: float = 0.2
    grey: float = 0.2
    blur: float = 0.5
    sigma: tuple[float, float] = (0.1, 2.0)
    solarize: float = 0.0
    mean: tuple[float, float, float] = field(default=IMAGENET_MEAN)
    std: tuple[float, float, float] = field(default=IMAGENET_STD)

    def __post_init__(self) -> None:
        if self.size < 4:
            raise SslsegError(f"views: size: {self.size} is too small (at least 4)")
        lo, hi = self.scale
        if not 0 < lo <= hi <= 1:
            raise SslsegError(f"views: scale: {self.scale} must satisfy 0 < min <= max <= 1")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise SslsegError(f"views: ratio: {self.ratio} must satisfy 0 < min <= max")
        for name in ("hflip", "jitter", "grey", "blur", "solarize"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise SslsegError(f"views: {name}: probability {p} is outside [0, 1]")
        if not 0 < self.sigma[0] <= self.sigma[1]:
            raise SslsegError(f"views: sigma: {self.sigma} must satisfy 0 < min <= max")


def _uniform(n: int, lo: float, hi: float, g: torch.Generator, device: torch.device) -> Tensor:
    return torch.rand(n, generator=g, device=device) * (hi - lo) + lo


def _coin(n: int, p: float, g: torch.Generator, device: torch.device) -> Tensor:
    return torch.rand(n, generator=g, device=device) < p


def crop_boxes(
    n: int,
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    g: torch.Generator,
    device: torch.device,
    attempts: int = 10,
) -> Tensor:
    """Random resized crop boxes ``(n, 4)`` as (left, top, w, h) in pixels.

    torchvision's rule, vectorised: up to ``attempts`` draws of area fraction in ``scale`` and
    log-uniform aspect ratio in ``ratio``; the first draw that fits is used, otherwise the
    largest centred box with the ratio clamped to ``ratio``.
    """
    area = float(height * width)
    log_r = (math.log(ratio[0]), math.log(ratio[1]))
    target = area * _uniform(n * attempts, scale[0], scale[1], g, device).view(n, attempts)
    aspect = torch.exp(_uniform(n * attempts, *log_r, g, device)).view(n, attempts)
    w = torch.sqrt(target * aspect).round()
    h = torch.sqrt(target / aspect).round()
    ok = (w > 0) & (h > 0) & (w <= width) & (h <= height)
    first = torch.where(
        ok.any(1), ok.float().argmax(1), torch.full_like(ok[:, 0], -1, dtype=torch.long)
    )
    pick = first.clamp(min=0).unsqueeze(1)
    w = w.gather(1, pick).squeeze(1)
    h = h.gather(1, pick).squeeze(1)
    # torchvision's fallback: centred, aspect clamped into ratio
    in_ratio = width / height
    if in_ratio < ratio[0]:
        fw, fh = float(width), round(width / ratio[0])
    elif in_ratio > ratio[1]:
        fw, fh = round(height * ratio[1]), float(height)
    else:
        fw, fh = float(width), float(height)
    bad = first < 0
    w = torch.where(bad, torch.full_like(w, fw), w)
    h = torch.where(bad, torch.full_like(h, fh), h)
    u = torch.rand(n, 2, generator=g, device=device)
    left = torch.floor(u[:, 0] * (width - w + 1))
    top = torch.floor(u[:, 1] * (height - h + 1))
    left = torch.where(bad, (width - w) // 2, left)
    top = torch.where(bad, (height - h) // 2, top)
    return torch.stack([left, top, w, h], 1)


def _resize_matrices(start: Tensor, length: Tensor, in_size: int, out_size: int) -> Tensor:
    """Per-sample ``(n, out_size, in_size)`` interpolation matrices for one axis.

    Output pixel ``j`` samples the input at ``start + (j + 0.5) * length / out_size - 0.5``
    with a triangle (bilinear) filter whose width grows with the down-scaling factor, i.e.
    bilinear with antialiasing as torchvision/PIL resize it; taps outside
    ``[start, start + length)`` are dropped and rows renormalised, which equals clamping at the
    crop's border.
    """
    scale = length / out_size
    support = scale.clamp(min=1.0)
    j = torch.arange(out_size, device=start.device, dtype=start.dtype)
    centre = start[:, None] + (j[None] + 0.5) * scale[:, None] - 0.5
    i = torch.arange(in_size, device=start.device, dtype=start.dtype)
    w = (1 - (i[None, None] - centre[..., None]).abs() / support[:, None, None]).clamp_(min=0)
    # only pixels inside the crop contribute (torchvision crops first, then resizes)
    inside = (i[None] >= start[:, None]) & (i[None] <= (start + length - 1)[:, None])
    w = w * inside[:, None, :]
    return w / w.sum(-1, keepdim=True).clamp_(min=1e-12)


def resized_crop(images: Tensor, boxes: Tensor, size: int, flip: Tensor | None = None) -> Tensor:
    """Crop ``boxes`` (left, top, w, h px) from float ``images``, resize to ``size``, flip.

    Resizing is separable, so the whole batch is two batched matrix products
    ``Ry @ x @ Rx^T`` with per-sample matrices; the horizontal flip is folded into ``Rx``.
    On a CPU this is several times cheaper than ``grid_sample`` and antialiases when the crop
    is larger than ``size``.
    """
    _, _, height, width = images.shape
    left, top, w, h = boxes.to(images.dtype).unbind(1)
    ry = _resize_matrices(top, h, height, size)
    rx = _resize_matrices(left, w, width, size)
    if flip is not None:
        rx = torch.where(flip[:, None, None], rx.flip(1), rx)
    return torch.matmul(torch.matmul(ry[:, None], images), rx.transpose(1, 2)[:, None])


def _affine(x: Tensor, matrix: Tensor, offset: Tensor | None = None) -> Tensor:
    """Per-image colour transform ``clamp(A @ rgb + o, 0, 1)`` in one batched product."""
    n, c, h, w = x.shape
    flat = x.reshape(n, c, h * w)
    if offset is None:
        out = torch.bmm(matrix, flat)
    else:
        out = torch.baddbmm(offset.view(n, c, 1), matrix, flat)
    return out.clamp_(0, 1).view(n, c, h, w)


# ITU-R 601 luma, the weights torchvision and PIL use for greyscale
_LUMA = (0.299, 0.587, 0.114)
# RGB <-> YIQ; a hue shift is a rotation of the IQ plane
_RGB2YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))


def _grey_matrix(n: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    return torch.tensor(_LUMA, device=device, dtype=dtype).expand(n, 3, 3)


def _saturation_matrix(f: Tensor) -> Tensor:
    # blend with the greyscale image: f * x + (1 - f) * grey(x)
    eye = torch.eye(3, device=f.device, dtype=f.dtype)
    grey = _grey_matrix(1, f.device, f.dtype)[0]
    return f.view(-1, 1, 1) * eye + (1 - f).view(-1, 1, 1) * grey


def _hue_matrix(shift: Tensor) -> Tensor:
    # rotate chroma by shift * 360 degrees in YIQ, the hue operator of NVIDIA DALI and of
    # CSS hue-rotate; it keeps luma and costs one 3x3 product instead of an HSV round trip
    t = torch.tensor(_RGB2YIQ, device=shift.device, dtype=shift.dtype)
    t_inv = torch.linalg.inv(t)
    cos, sin = torch.cos(shift * 2 * math.pi), torch.sin(shift * 2 * math.pi)
    one, zero = torch.ones_like(cos), torch.zeros_like(cos)
    rot = torch.stack(
        [
            torch.stack([one, zero, zero], 1),
            torch.stack([zero, cos, -sin], 1),
            torch.stack([zero, sin, cos], 1),
        ],
        1,
    )
    return t_inv @ rot @ t


def colour_jitter(x: Tensor, spec: ViewSpec, g: torch.Generator) -> Tensor:
    """torchvision's ColorJitter on a float batch in [0, 1], with per-image factors.

    Brightness scales, contrast blends with the mean grey level, saturation blends with the
    greyscale image (torchvision's definitions, clamped after each step); hue rotates chroma in
    YIQ rather than shifting H in HSV (same role, no HSV round trip). Each step is one batched
    3x3 product. The order of the four steps is drawn once per batch (torchvision draws it per
    image).
    """
    n, device, dtype = x.shape[0], x.device, x.dtype
    s = spec.strength
    order = torch.randperm(4, generator=g, device=device).tolist()
    b = _uniform(n, max(0.0, 1 - s * spec.brightness), 1 + s * spec.brightness, g, device)
    c = _uniform(n, max(0.0, 1 - s * spec.contrast), 1 + s * spec.contrast, g, device)
    sat = _uniform(n, max(0.0, 1 - s * spec.saturation), 1 + s * spec.saturation, g, device)
    hue = _uniform(n, -min(0.5, s * spec.hue), min(0.5, s * spec.hue), g, device)
    eye = torch.eye(3, device=device, dtype=dtype)
    luma = torch.tensor(_LUMA, device=device, dtype=dtype)
    for op in order:
        if op == 0 and spec.brightness > 0:
            x = _affine(x, b.view(-1, 1, 1) * eye)
        elif op == 1 and spec.contrast > 0:
            mean_grey = x.mean((2, 3)) @ luma
            x = _affine(x, c.view(-1, 1, 1) * eye, ((1 - c) * mean_grey)[:, None].expand(n, 3))
        elif op == 2 and spec.saturation > 0:
            x = _affine(x, _saturation_matrix(sat))
        elif op == 3 and spec.hue > 0:
            x = _affine(x, _hue_matrix(hue))
    return x


def greyscale(x: Tensor) -> Tensor:
    """Luma replicated over three channels (torchvision ``Grayscale(3)``)."""
    return _affine(x, _grey_matrix(x.shape[0], x.device, x.dtype))


def _blur_matrices(sigma: Tensor, size: int, radius: int) -> Tensor:
    """Per-sample ``(n, size, size)`` Gaussian blur matrices with reflect padding folded in."""
    radius = max(1, min(radius, size - 1))
    device, dtype = sigma.device, sigma.dtype
    taps = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    kernel = torch.exp(-(taps[None] ** 2) / (2 * sigma[:, None] ** 2))
    kernel = kernel / kernel.sum(1, keepdim=True)
    padded = size + 2 * radius
    # G[j, p] = kernel[p - j] for output j and padded input p
    j = torch.arange(size, device=device)
    p = torch.arange(padded, device=device)
    d = p[None] - j[:, None]
    band = (d >= 0) & (d <= 2 * radius)
    g = torch.where(
        band, kernel[:, d.clamp(0, 2 * radius)], torch.zeros((), dtype=dtype, device=device)
    )
    # fold the reflect padding (kornia/PyTorch "reflect": no edge repeat) into the columns
    src = (p - radius).abs()
    src = torch.where(src > size - 1, 2 * (size - 1) - src, src)
    fold = torch.zeros(padded, size, device=device, dtype=dtype)
    fold[p, src] = 1
    return g @ fold


def gaussian_blur(x: Tensor, sigma: Tensor, radius: int | None = None) -> Tensor:
    """Per-sample isotropic Gaussian blur with reflect borders, as two batched products.

    Equals ``kornia.filters.gaussian_blur2d`` with kernel size ``2 * radius + 1``; the default
    radius covers 3 sigma of the largest sigma in the batch.
    """
    if radius is None:
        radius = math.ceil(3 * float(sigma.max()))
    _, _, h, w = x.shape
    by = _blur_matrices(sigma.to(x.dtype), h, radius)
    bx = by if w == h else _blur_matrices(sigma.to(x.dtype), w, radius)
    return torch.matmul(torch.matmul(by[:, None], x), bx.transpose(1, 2)[:, None])


def _where_apply(x: Tensor, mask: Tensor, fn: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
    """Apply ``fn(x[mask], idx)`` only to the selected rows (saves the work on the others)."""
    idx = mask.nonzero().squeeze(1)
    if idx.numel() == 0:
        return x
    if idx.numel() == x.shape[0]:
        return fn(x, idx)
    out = x.clone()
    out[idx] = fn(x[idx], idx)
    return out


def make_view(images: Tensor, spec: ViewSpec, g: torch.Generator) -> Tensor:
    """One augmented view of a float batch in [0, 1] (``B x 3 x H x W``), normalised.

    The draws happen in a fixed order (crop, flip, jitter, grey, blur, solarize), so a seeded
    generator gives the same views on every run and every device type.
    """
    n, _, height, width = images.shape
    device = images.device
    boxes = crop_boxes(n, height, width, spec.scale, spec.ratio, g, device)
    flip = _coin(n, spec.hflip, g, device)
    jit = _coin(n, spec.jitter, g, device)
    grey = _coin(n, spec.grey, g, device)
    blur = _coin(n, spec.blur, g, device)
    sigma = _uniform(n, spec.sigma[0], spec.sigma[1], g, device)
    sol = _coin(n, spec.solarize, g, device)
    x = resized_crop(images, boxes, spec.size, flip)
    if spec.jitter > 0:
        x = _where_apply(x, jit, lambda t, _i: colour_jitter(t, spec, g))
    if spec.grey > 0:
        x = _where_apply(x, grey, lambda t, _i: greyscale(t))
    if spec.blur > 0:
        radius = math.ceil(3 * spec.sigma[1])
        x = _where_apply(x, blur, lambda t, i: gaussian_blur(t, sigma[i], radius))
    if spec.solarize > 0:
        x = _where_apply(x, sol, lambda t, _i: torch.where(t >= 0.5, 1 - t, t))
    mean = torch.tensor(spec.mean, device=device, dtype=x.dtype).view(1, 3, 1, 1)
    inv_std = 1 / torch.tensor(spec.std, device=device, dtype=x.dtype).view(1, 3, 1, 1)
    return x.sub_(mean).mul_(inv_std)


def flip_batch(x: Tensor, y: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Mirror a random half of the batch left-right, ``x`` and its pair ``y`` (a mask or a
    target image) alike; one draw per image from ``generator`` (on the CPU)."""
    flip = (torch.rand(x.shape[0], generator=generator) < 0.5).to(x.device)
    x = torch.where(flip.view(-1, *[1] * (x.dim() - 1)), x.flip(-1), x)
    y = torch.where(flip.view(-1, *[1] * (y.dim() - 1)), y.flip(-1), y)
    return x, y


def to_float(batch_uint8: Tensor) -> Tensor:
    """``B x 3 x H x W`` uint8 → float32 in [0, 1] (done once per batch, shared by all views)."""
    if batch_uint8.dtype != torch.uint8 or batch_uint8.dim() != 4 or batch_uint8.shape[1] != 3:
        raise SslsegError(
            f"views: expected a uint8 B x 3 x H x W batch, got "
            f"{batch_uint8.dtype} {tuple(batch_uint8.shape)}"
        )
    return batch_uint8.float().div_(255)


class MultiView:
    """A view maker applying each :class:`ViewSpec` in turn to the same batch."""

    def __init__(self, specs: Sequence[ViewSpec]) -> None:
        if not specs:
            raise SslsegError("views: a view maker needs at least one view")
        self.specs = list(specs)

    def __call__(self, batch_uint8: Tensor, indices: Tensor, g: torch.Generator) -> list[Tensor]:
        images = to_float(batch_uint8)
        return [make_view(images, spec, g) for spec in self.specs]

    def __repr__(self) -> str:
        return f"MultiView({self.specs!r})"


# ---------------------------------------------------------------- defaults by view size

#: Views of at most this side (px) get the CIFAR-scale recipes of lightly's CIFAR-10 benchmark
#: and solo-learn's CIFAR configs (no Gaussian blur; colour-jitter strength 0.5 where they use
#: it); larger views get the papers' ImageNet recipes. See ``docs/methods.md``.
SMALL_SIDE = 96
#: the side the papers' blur sigma range is given at: SimCLR (appendix A) and BYOL (table 6)
#: draw sigma in [0.1, 2.0] for 224 px crops
PAPER_SIDE = 224
PAPER_SIGMA = (0.1, 2.0)


def is_small(size: int) -> bool:
    """Whether views of side ``size`` get the CIFAR-scale recipes (``size <= SMALL_SIDE``)."""
    return size <= SMALL_SIDE


def paper_sigma(size: int) -> tuple[float, float]:
    """The papers' blur sigma range (0.1, 2.0 px at 224 px) in pixels of a ``size`` px view,
    so that a blurred view loses the same share of its detail at every size."""
    f = size / PAPER_SIDE
    return (PAPER_SIGMA[0] * f, PAPER_SIGMA[1] * f)


def simclr_specs(
    size: int, strength: float | None = None, blur: float | None = None
) -> list[ViewSpec]:
    """SimCLR's two identically distributed views (Chen et al. 2020, appendix A), by size.

    ``size <= SMALL_SIDE``: colour-jitter strength 0.5 and no blur, SimCLR's CIFAR-10 setting
    (appendix B.9) and lightly's CIFAR-10 benchmark (``SimCLRTransform(cj_strength=0.5,
    gaussian_blur=0.0)``). Larger: strength 1.0, blur p = 0.5 with :func:`paper_sigma`.
    ``strength`` / ``blur`` given explicitly override the choice.
    """
    small = is_small(size)
    if strength is None:
        strength = 0.5 if small else 1.0
    if blur is None:
        blur = 0.0 if small else 0.5
    spec = ViewSpec(size=size, strength=strength, blur=blur, sigma=paper_sigma(size))
    return [spec, replace(spec)]
