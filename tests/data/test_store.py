import numpy as np
import pytest
from PIL import Image

from sslseg.data.sources import make_source
from sslseg.data.store import build_store, content_hash, open_store
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
