"""Input checks shared by the saliency functions: all become contiguous uint8 HxWx3 RGB."""

from __future__ import annotations

import numpy as np

from sslseg.errors import SslsegError

#: Inputs above this many pixels are refused (a 10,000 x 10,000 photo); RC and SaliencyCut
#: work on a downscaled copy well below it anyway (see ``rc(max_pixels=...)``).
MAX_INPUT_PIXELS = 100_000_000


def as_rgb(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Return ``image`` as a C-contiguous uint8 HxWx3 RGB array.

    Greyscale (HxW or HxWx1) is replicated to three channels and an alpha channel is dropped,
    so that greyscale photographs give a valid map instead of an error. Float input must lie
    in [0, 1]. Anything else raises :class:`SslsegError` naming ``name``.
    """
    if not isinstance(image, np.ndarray):
        raise SslsegError(f"{name}: expected a numpy array, got {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise SslsegError(f"{name}: expected an HxW or HxWx3 image, got shape {image.shape}")
    if image.shape[2] == 4:
        image = image[:, :, :3]
    h, w = image.shape[:2]
    if h < 1 or w < 1:
        raise SslsegError(f"{name}: empty image of shape {image.shape}")
    if h * w > MAX_INPUT_PIXELS:
        raise SslsegError(
            f"{name}: {w}x{h} is larger than the {MAX_INPUT_PIXELS:,} pixel limit; downscale it"
        )
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    if np.issubdtype(image.dtype, np.floating):
        if not np.all(np.isfinite(image)) or image.min() < 0 or image.max() > 1:
            raise SslsegError(f"{name}: float images must hold finite values in [0, 1]")
        return np.ascontiguousarray(np.round(image * 255).astype(np.uint8))
    raise SslsegError(f"{name}: unsupported dtype {image.dtype} (use uint8 or float in [0, 1])")
