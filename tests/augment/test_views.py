import kornia
import pytest
import torch
import torchvision.transforms.functional as TF

from sslseg.augment import views as V
from sslseg.errors import SslsegError


def _batch(n=8, side=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, side, side), generator=g, dtype=torch.uint8)


def test_two_views_differ_and_keep_shape_dtype_range():
    batch = _batch()
    maker = V.MultiView(V.simclr_specs(16))
    v0, v1 = maker(batch, torch.arange(8), torch.Generator().manual_seed(1))
    mean = torch.tensor(V.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(V.IMAGENET_STD).view(1, 3, 1, 1)
    for v in (v0, v1):
        assert v.shape == (8, 3, 16, 16) and v.dtype == torch.float32
        pixels = v * std + mean
        assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
    assert (v0 - v1).abs().mean() > 0.05
    # each image's two views differ, not only the batch as a whole
    assert ((v0 - v1).abs().flatten(1).mean(1) > 1e-3).all()


def test_views_are_reproducible_from_the_generator():
    batch = _batch()
    maker = V.MultiView(V.simclr_specs(16))
    a = maker(batch, torch.arange(8), torch.Generator().manual_seed(3))
    b = maker(batch, torch.arange(8), torch.Generator().manual_seed(3))
    c = maker(batch, torch.arange(8), torch.Generator().manual_seed(4))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0], c[0])


def test_resized_crop_matches_torchvision_and_flip():
    x = _batch(n=3, side=20).float() / 255
    boxes = torch.tensor([[0.0, 0.0, 20.0, 20.0], [3.0, 5.0, 9.0, 12.0], [10.0, 1.0, 10.0, 7.0]])
    flip = torch.tensor([False, False, True])
    out = V.resized_crop(x, boxes, 16, flip)
    for i, (left, top, w, h) in enumerate(boxes.int().tolist()):
        ref = TF.resized_crop(x[i], top, left, h, w, [16, 16], antialias=True)
        if flip[i]:
            ref = ref.flip(-1)
        assert torch.allclose(out[i], ref, atol=2e-5), i


def test_blur_matches_kornia():
    x = _batch(n=4, side=20).float() / 255
    sigma = torch.tensor([0.1, 0.7, 1.3, 2.0])
    ours = V.gaussian_blur(x, sigma, radius=6)
    ref = kornia.filters.gaussian_blur2d(x, (13, 13), torch.stack([sigma, sigma], 1))
    assert torch.allclose(ours, ref, atol=1e-5)


def test_colour_operations_match_torchvision():
    x = _batch(n=2, side=8).float() / 255
    f = torch.tensor([0.3, 1.6])
    sat = V._affine(x, V._saturation_matrix(f))
    for i in range(2):
        assert torch.allclose(sat[i], TF.adjust_saturation(x[i], float(f[i])), atol=3e-4)
    grey = V.greyscale(x)
    assert torch.allclose(grey, TF.rgb_to_grayscale(x, 3), atol=3e-4)
    # (PIL luma 0.299 vs torchvision 0.2989: 1e-4 apart)
    # a zero hue shift is the identity; any shift keeps luma
    assert torch.allclose(V._affine(x, V._hue_matrix(torch.zeros(2))), x, atol=1e-5)
    # seeded and near grey, so no rotated value is clipped to [0, 1] (clipping changes luma)
    gen = torch.Generator().manual_seed(0)
    mid = torch.full((2, 3, 4, 4), 0.5) + 0.05 * torch.randn(2, 3, 4, 4, generator=gen)
    rotated = V._affine(mid.clamp(0, 1), V._hue_matrix(torch.tensor([0.25, -0.4])))
    luma = torch.tensor(V._LUMA).view(1, 3, 1, 1)
    assert torch.allclose((rotated * luma).sum(1), (mid.clamp(0, 1) * luma).sum(1), atol=1e-4)


def test_bad_inputs_are_clear_errors():
    with pytest.raises(SslsegError, match="uint8"):
        V.MultiView(V.simclr_specs(8))(torch.zeros(2, 3, 8, 8), torch.arange(2), torch.Generator())
    with pytest.raises(SslsegError, match="scale"):
        V.ViewSpec(scale=(0.5, 0.1))
    with pytest.raises(SslsegError, match="sigma"):
        V.ViewSpec(sigma=(0.0, 1.0))
