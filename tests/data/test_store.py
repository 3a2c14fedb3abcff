import numpy as np
import pytest
from PIL import Image

from sslseg.data.sources import make_source
from sslseg.data.store import (
    STORE_VERSION,
    build_store,
    content_hash,
    open_store,
    resize_image,
    resize_mask,
)
from sslseg.errors import SslsegError


def test_sample_store_shapes_and_reuse(tmp_path):
    store = open_store("sample", side=64, cache=tmp_path, progress=False)
    assert store.images.shape == (len(store), 64, 64, 3) and store.images.dtype == np.uint8
    assert store.masks.shape == (len(store), 64, 64)
    assert set(np.unique(store.masks)) <= {0, 1}
    assert len(store.hashes) == len(set(store.hashes)) == len(store)
    again = open_store("sample", side=64, cache=tmp_path, progress=False)
    assert again.root == store.root
    assert [p.name for p in tmp_path.iterdir()] == [store.root.name]  # no temp folders left


def test_store_key_changes_with_side_and_border(tmp_path):
    a = open_store("sample", side=32, cache=tmp_path, progress=False)
    b = open_store("sample", side=64, cache=tmp_path, progress=False)
    c = open_store("sample", side=32, cache=tmp_path, progress=False, border="ignore")
    assert len({a.root, b.root, c.root}) == 3
    assert (c.masks == 255).any() and not (a.masks == 255).any()


def test_content_hash_depends_on_pixels_only():
    image = np.zeros((4, 4, 3), np.uint8)
    assert content_hash(image) == content_hash(image.copy())
    other = image.copy()
    other[0, 0, 0] = 1
    assert content_hash(image) != content_hash(other)


def test_trimap_of_another_size_leaves_nothing_behind(tmp_path):
    root = tmp_path / "pet"
    (root / "images").mkdir(parents=True)
    (root / "annotations" / "trimaps").mkdir(parents=True)
    Image.new("RGB", (8, 6)).save(root / "images" / "a_1.jpg")
    Image.fromarray(np.ones((5, 5), np.uint8)).save(root / "annotations" / "trimaps" / "a_1.png")
    cache = tmp_path / "cache"
    with pytest.raises(SslsegError, match=r"a_1\.png: mask is 5x5 but its image is 8x6"):
        build_store(make_source("oxford-pet", root), 32, root=cache, progress=False)
    assert list(cache.iterdir()) == []


def test_impossible_store_settings(tmp_path):
    with pytest.raises(SslsegError, match="resize"):
        open_store("sample", side=32, resize="stretch", cache=tmp_path)
    with pytest.raises(SslsegError, match="side"):
        open_store("sample", side=2, cache=tmp_path)


def _disc(h: int, w: int, cy: float, cx: float, r: float) -> np.ndarray:
    ys, xs = np.indices((h, w))
    return ((ys - cy) ** 2 + (xs - cx) ** 2 <= r * r).astype(np.uint8)


def _centroid(weights: np.ndarray) -> np.ndarray:
    ys, xs = np.indices(weights.shape)
    total = weights.sum()
    return np.array([(weights * ys).sum() / total, (weights * xs).sum() / total])


def _expected_centroid(disc: np.ndarray, side: int, rule: str) -> np.ndarray:
    # where the disc's centroid lands with pixel centres aligned: (x + 0.5) * scale - 0.5
    h, w = disc.shape
    if rule == "center-crop":
        s = min(h, w)
        disc = disc[(h - s) // 2 :][:s, (w - s) // 2 :][:, :s]
        h = w = s
    return (_centroid(disc.astype(np.float64)) + 0.5) * np.array([side / h, side / w]) - 0.5


@pytest.mark.parametrize(
    ("shape", "side"),
    [
        ((375, 500), 64),
        ((375, 500), 96),
        ((375, 500), 128),
        ((375, 500), 375),  # one axis kept, one shrunk
        ((40, 40), 64),  # enlarging
        ((30, 40), 64),  # enlarging by a non-integer ratio
        ((40, 500), 64),  # one axis shrunk, the other enlarged
    ],
)
@pytest.mark.parametrize("rule", ["squash", "center-crop"])
def test_mask_lands_where_the_image_does(shape, side, rule):
    h, w = shape
    # the discs lie inside what the rule keeps (an edge pixel replicated when enlarging
    # would move a cut disc's centroid)
    top, left, hh, ww = 0, 0, h, w
    if rule == "center-crop":
        hh = ww = min(h, w)
        top, left = (h - hh) // 2, (w - ww) // 2
    offsets = []
    # off-centre discs at several sub-pixel positions: a single digitised disc's centroid
    # is off by up to ~0.15 px from where its edge pixels happen to fall, the old rule's
    # offset (INTER_NEAREST) was +0.5 px on every disc
    for k in range(6):
        cy, cx = top + 0.43 * hh + 0.17 * k, left + 0.56 * ww + 0.29 * k
        disc = _disc(h, w, cy, cx, 0.3 * min(hh, ww) + 0.13 * k)
        image = np.repeat((disc * 200 + 20)[..., None], 3, axis=2).astype(np.uint8)
        small_image = resize_image(image, side, rule)[..., 0].astype(np.float64) - 20
        small_mask = resize_mask(disc, side, rule)
        assert small_mask.shape == (side, side) and set(np.unique(small_mask)) == {0, 1}
        # the image itself is where the geometry says (one INTER_AREA call over one axis
        # shrinking and one growing shifted it by 0.4 px)
        image_offset = _centroid(small_image) - _expected_centroid(disc, side, rule)
        assert np.abs(image_offset).max() < 0.05, image_offset
        offsets.append(_centroid(small_mask.astype(np.float64)) - _centroid(small_image))
    offsets = np.array(offsets)
    assert np.abs(offsets.mean(axis=0)).max() < 0.1, offsets
    assert np.abs(offsets).max() < 0.25, offsets


def test_mask_resize_keeps_its_labels_and_the_ignore_value():
    h, w = 375, 500
    inner = _disc(h, w, 150.2, 280.7, 90)
    ring = _disc(h, w, 150.2, 280.7, 110) - inner
    mask = (inner + 255 * ring).astype(np.uint8)  # 0 outside, 1 inside, 255 = ignore between
    small = resize_mask(mask, 64, "squash")
    assert small.dtype == np.uint8 and set(np.unique(small)) == {0, 1, 255}
    # the 20 px ring is 2.6-3.4 output px wide: it survives as a band around the disc
    assert 0.5 * ring.mean() < (small == 255).mean() < 1.5 * ring.mean()
    assert np.array_equal(resize_mask(np.ones((30, 40), np.uint8), 64, "squash"), np.ones((64, 64)))


def test_store_folder_names_its_version(tmp_path):
    # a store decoded under an older resize rule lives under another name: never reused
    store = open_store("sample", side=32, cache=tmp_path, progress=False)
    assert store.root.name.endswith(f"-v{STORE_VERSION}") and STORE_VERSION >= 2
