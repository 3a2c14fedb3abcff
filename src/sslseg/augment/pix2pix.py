"""Pix2Pix (Isola et al. 2017) as a learned proxy of the SaliencyCut region image.

Rezaei et al. (seed study, section 3.3.1, Fig. 6) first replaced the costly SaliencyCut
augmentation by an image-to-image network trained on (image, SaliencyCut region image) pairs,
then moved to the offline hashed cache (:mod:`sslseg.saliency.cache`). This module holds the
network and its loss; :mod:`sslseg.augment.pix2pix_train` trains it (``sslseg pix2pix``) and
:class:`GeneratorPainter` in :mod:`sslseg.augment.saliency_view` uses it as a view.

As in the paper (its appendix, "Network architectures"):

* **generator**: a U-Net of ``Ck`` blocks (4 x 4 convolution with stride 2, batch norm,
  LeakyReLU 0.2 down; transposed convolution, batch norm, ReLU up, dropout 0.5 in the up
  blocks of the middle ``8 * ngf`` levels: 3 at 256 px, 1 at 64 px), skip connections
  between mirrored levels, ``tanh`` output in [-1, 1]. Widths ``ngf * (1, 2, 4, 8, 8, ...)``;
  ``log2(side)`` levels, so the innermost map is 1 x 1 at any power-of-two side (8 levels at
  256 px as in the paper, 6 at 64 px).
* **discriminator**: a PatchGAN on the (image, region image) pair: ``C64-C128-...`` with
  ``layers`` stride-2 blocks, one stride-1 block and a one-channel stride-1 convolution;
  ``layers=3`` is the paper's 70 x 70 patch, ``layers=2`` (34 x 34) the same share of a
  64-128 px image (:func:`default_layers`).
* **loss**: the conditional GAN loss (binary cross-entropy on the patch logits) plus
  ``l1_weight`` (100) times the L1 distance to the true region image; the discriminator's
  loss is halved; Adam with lr 2e-4 and betas (0.5, 0.999).

Images enter in [-1, 1] (:func:`to_signed`); the painter maps the output back to [0, 1].
The generator runs in eval mode as a view (batch statistics of the training set, no
dropout), so a painted image is a function of the input alone, like the cache's.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sslseg.errors import SslsegError

GENERATOR_FILE = "generator.pt"
#: keys of a generator file's ``meta`` that rebuild the network
ARCH_KEYS = ("side", "ngf", "dropout")


def check_side(side: int) -> int:
    """The number of U-Net levels for ``side`` (a power of two, at least 8)."""
    levels = int(round(math.log2(side))) if side > 0 else 0
    if side < 8 or 2**levels != side:
        raise SslsegError(f"config: side: Pix2Pix needs a power-of-two side >= 8, got {side}")
    return levels


def default_layers(side: int) -> int:
    """PatchGAN stride-2 blocks: the paper's 70 x 70 patch (3) from 256 px, 34 x 34 below."""
    return 3 if side >= 256 else 2


def to_signed(x: Tensor) -> Tensor:
    """[0, 1] images to the networks' [-1, 1]."""
    return x * 2 - 1


def to_unit(x: Tensor) -> Tensor:
    """The generator's [-1, 1] back to [0, 1]."""
    return (x + 1) / 2


def _down(cin: int, cout: int, norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 4, 2, 1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(cout))
    return nn.Sequential(*layers)


def _up(cin: int, cout: int, dropout: bool) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.ReLU(),
        nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if dropout:
        layers.append(nn.Dropout(0.5))
    return nn.Sequential(*layers)


class UNetGenerator(nn.Module):
    """Pix2Pix's U-Net generator for ``side`` x ``side`` RGB images (module docstring)."""

    def __init__(self, side: int = 64, ngf: int = 64, dropout: bool = True) -> None:
        super().__init__()
        levels = check_side(side)
        widths = [ngf * min(2**i, 8) for i in range(levels)]
        self.side, self.ngf, self.dropout = side, ngf, dropout
        # down i maps widths[i-1] -> widths[i]; the first has no norm, the innermost neither
        # (a 1 x 1 map of batch statistics is the batch's own, as in the paper's code)
        self.downs = nn.ModuleList(
            _down(3 if i == 0 else widths[i - 1], widths[i], 0 < i < levels - 1)
            for i in range(levels)
        )
        # up j (innermost first) maps the concatenation back; dropout only in the middle
        # blocks of width 8 * ngf in and out (the paper's code: 3 at 256 px, 1 at 64 px)
        ups = []
        for j in range(levels - 1):
            i = levels - 1 - j  # the level this block comes up from
            cin = widths[i] if j == 0 else widths[i] * 2
            middle = j > 0 and widths[i - 1] == widths[i] == ngf * 8
            ups.append(_up(cin, widths[i - 1], dropout and middle))
        self.ups = nn.ModuleList(ups)
        self.out = nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(widths[0] * 2, 3, 4, 2, 1))

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for i, down in enumerate(self.downs):
            x = down(x if i == 0 else F.leaky_relu(x, 0.2))
            skips.append(x)
        x = skips.pop()
        for up in self.ups:
            x = torch.cat([up(x), skips.pop()], 1)
        return torch.tanh(self.out(x))


class PatchDiscriminator(nn.Module):
    """Pix2Pix's PatchGAN: logits per overlapping patch of an (image, region image) pair."""

    def __init__(self, ndf: int = 64, layers: int = 3) -> None:
        super().__init__()
        if layers < 1:
            raise SslsegError(f"config: d_layers: must be at least 1, got {layers}")
        blocks: list[nn.Module] = [nn.Conv2d(6, ndf, 4, 2, 1), nn.LeakyReLU(0.2)]
        width = ndf
        for n in range(1, layers + 1):
            cout = ndf * min(2**n, 8)
            stride = 2 if n < layers else 1
            blocks += [
                nn.Conv2d(width, cout, 4, stride, 1, bias=False),
                nn.BatchNorm2d(cout),
                nn.LeakyReLU(0.2),
            ]
            width = cout
        blocks.append(nn.Conv2d(width, 1, 4, 1, 1))
        self.net = nn.Sequential(*blocks)

    def forward(self, image: Tensor, target: Tensor) -> Tensor:
        return self.net(torch.cat([image, target], 1))


def init_weights(module: nn.Module) -> None:
    """The paper's initialisation: N(0, 0.02) weights, batch-norm scales N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def gan_loss(logits: Tensor, real: bool) -> Tensor:
    """Binary cross-entropy of every patch logit against real (1) or fake (0)."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def save_generator(generator: UNetGenerator, path: Path, meta: dict[str, Any]) -> Path:
    """Write the generator's weights and ``meta`` (what it learned from) to ``path`` and
    the same ``meta`` as ``<path>.json`` beside it."""
    import io

    from sslseg.runs import atomic_write_bytes, atomic_write_text

    meta = {**meta, "side": generator.side, "ngf": generator.ngf, "dropout": generator.dropout}
    buf = io.BytesIO()
    torch.save({"state_dict": generator.state_dict(), "meta": meta}, buf)
    atomic_write_bytes(path, buf.getvalue())
    atomic_write_text(path.with_suffix(".json"), json.dumps(meta, indent=2) + "\n")
    return path


def load_generator(path: str | Path) -> tuple[UNetGenerator, dict[str, Any]]:
    """The generator of a ``generator.pt`` file (or a run folder holding one) and its meta,
    in eval mode; a missing or foreign file is one line naming it."""
    path = Path(path)
    if path.is_dir():
        path = path / GENERATOR_FILE
    if not path.is_file():
        raise SslsegError(f"pix2pix: {path}: no generator file (train one with `sslseg pix2pix`)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        meta = dict(blob["meta"])
        generator = UNetGenerator(*(meta[k] for k in ARCH_KEYS))
        generator.load_state_dict(blob["state_dict"])
    except SslsegError:
        raise
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same one-line error
        raise SslsegError(f"pix2pix: {path}: not a Pix2Pix generator file ({exc})") from None
    return generator.eval(), meta


class GeneratorPainter:
    """The Pix2Pix proxy as the saliency view's painter (``pix2pix…`` policies).

    Once per batch the generator (eval mode, no gradients, bf16 where the device has it
    natively under ``precision="auto"``) turns the batch's images into region images; every
    view that draws the saliency image takes its rows of that one output.
    """

    deterministic = True  # a function of the image alone

    def __init__(self, generator: UNetGenerator, precision: str = "auto") -> None:
        self.generator = generator.eval().requires_grad_(False)
        self.precision = precision
        self._device: torch.device | None = None

    def prepare(self, indices: Tensor, images: Tensor) -> Tensor:
        from sslseg.devices import autocast, resolve_precision

        if images.shape[-1] != self.generator.side:
            raise SslsegError(
                f"pix2pix: the generator learned {self.generator.side}-px images, the views "
                f"are {images.shape[-1]} px (train one at this side)"
            )
        if self._device != images.device:
            self.generator.to(images.device)
            self._device = images.device
            self.precision = resolve_precision(images.device, self.precision)
        with torch.no_grad(), autocast(images.device, self.precision):
            out = self.generator(to_signed(images)).float()
        return to_unit(out).clamp_(0, 1)

    def paint(self, prepared: Tensor, rows: Tensor, g: torch.Generator, side: int) -> Tensor:
        return prepared if len(rows) == len(prepared) else prepared[rows]
