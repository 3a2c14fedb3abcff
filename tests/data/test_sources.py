import numpy as np
import pytest
from PIL import Image

from sslseg.data.sources import IGNORE, make_source, read_rgb
from sslseg.data.sources.base import list_images
from sslseg.errors import SslsegError


def _pet_folder(tmp_path, trimap_values=(1, 2, 3), trimap_size=(8, 6), names=("cat_1", "cat_2")):
    (tmp_path / "images").mkdir()
    (tmp_path / "annotations" / "trimaps").mkdir(parents=True)
    for name in names:
        Image.new("RGB", (8, 6), (200, 10, 10)).save(tmp_path / "images" / f"{name}.jpg")
        tri = np.full(trimap_size[::-1], trimap_values[0], np.uint8)
        tri[0, : len(trimap_values)] = trimap_values
        Image.fromarray(tri).save(tmp_path / "annotations" / "trimaps" / f"{name}.png")
    return tmp_path


def test_sample_is_embedded_with_trimaps_and_breeds():
    source = make_source("sample")
    items = source.items()
    assert 60 <= len(items) <= 100
    assert source.class_names == ["Abyssinian", "american_bulldog", "Bengal"]
    mask = source.read_mask(items[0])
    assert set(np.unique(mask)) <= {0, 1}
    assert mask.shape == source.read_image(items[0]).shape[:2]


@pytest.mark.parametrize(
    "border,expected", [("foreground", 1), ("background", 0), ("ignore", IGNORE)]
)
def test_trimap_border_rule(tmp_path, border, expected):
    source = make_source("oxford-pet", _pet_folder(tmp_path), border=border)
    mask = source.read_mask(source.items()[0])
    assert mask[0, :3].tolist() == [1, 0, expected]


def test_trimap_with_foreign_values_is_refused(tmp_path):
    source = make_source("oxford-pet", _pet_folder(tmp_path, trimap_values=(1, 2, 7)))
    with pytest.raises(SslsegError, match=r"cat_1\.png.*\[7\]"):
        source.read_mask(source.items()[0])


def test_image_without_trimap_is_named(tmp_path):
    root = _pet_folder(tmp_path)
    (root / "annotations" / "trimaps" / "cat_2.png").unlink()
    with pytest.raises(SslsegError, match="cat_2.jpg: no trimap"):
        make_source("oxford-pet", root).items()


def test_palette_rgba_and_grey_images_become_rgb(tmp_path):
    Image.new("P", (4, 3), 5).save(tmp_path / "p.png")
    Image.new("RGBA", (4, 3), (10, 20, 30, 255)).save(tmp_path / "a.png")
    Image.new("L", (4, 3), 77).save(tmp_path / "g.png")
    for name in ("p.png", "a.png", "g.png"):
        image = read_rgb(tmp_path / name)
        assert image.shape == (3, 4, 3) and image.dtype == np.uint8
    assert read_rgb(tmp_path / "a.png")[0, 0].tolist() == [10, 20, 30]
    assert read_rgb(tmp_path / "g.png")[0, 0].tolist() == [77, 77, 77]


def test_corrupt_image_is_named(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    with pytest.raises(SslsegError, match="broken.jpg: not a readable image"):
        read_rgb(bad)


def test_seg_folder_binary_masks(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "images" / "a.jpg")
    Image.fromarray(np.array([[0, 255]] * 4, np.uint8).repeat(2, 1)).save(tmp_path / "masks/a.png")
    source = make_source("seg-folder", tmp_path)
    assert source.read_mask(source.items()[0])[0].tolist() == [0, 0, 1, 1]


def test_cats_vs_dogs_labels_from_names(tmp_path):
    for name in ("cat.0.jpg", "dog.3.jpg", "cat.1.jpg", "readme.jpg"):
        Image.new("RGB", (4, 4)).save(tmp_path / name)
    items = make_source("cats-vs-dogs", tmp_path).items()
    assert [(i.id, i.label) for i in items] == [("cat.0", 0), ("cat.1", 0), ("dog.3", 1)]


def test_image_folder_class_subfolders_and_empty(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SslsegError, match="no images found"):
        make_source("image-folder", empty).items()
    for cls in ("b", "a"):
        (tmp_path / "data" / cls).mkdir(parents=True)
        Image.new("RGB", (4, 4)).save(tmp_path / "data" / cls / "x.png")
    source = make_source("image-folder", tmp_path / "data")
    assert [(i.id, i.label) for i in source.items()] == [("a/x", 0), ("b/x", 1)]


def test_unknown_source_and_missing_folder():
    with pytest.raises(SslsegError, match="unknown source 'pets'"):
        make_source("pets", "/tmp")
    with pytest.raises(SslsegError, match="data folder not found"):
        make_source("cifar10", "/no/such/folder")


def test_shared_cifar10_folders(shared_data):
    source = make_source("cifar10", shared_data / "cifar10", split="test")
    items = source.items()
    assert len(source.class_names) == 10
    assert len(items) == len(list_images(shared_data / "cifar10" / "test" / "cat")) * 10


def test_torchvision_cifar10_pickles(tmp_path):
    import pickle

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    names = ["airplane", "automobile"] + [f"c{i}" for i in range(8)]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))
    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": data, b"labels": [1, 0]}))
    source = make_source("cifar10", tmp_path, split="test")
    items = source.items()
    assert [i.label for i in items] == [1, 0] and source.class_names[:2] == names[:2]
    image = source.read_image(items[1])
    assert image.shape == (32, 32, 3)
    # channel-planar rows: red plane first, so pixel (0, 0) is (R0, G0, B0) of the row
    assert image[0, 0].tolist() == [data[1, 0], data[1, 1024], data[1, 2048]]


def test_stl10_binary_is_column_major(tmp_path):
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    planes = np.zeros((1, 3, 96, 96), np.uint8)
    planes[0, 0, 5, 2] = 200  # stored transposed: column 5, row 2 of the red plane
    planes.tofile(folder / "train_X.bin")
    np.array([3], np.uint8).tofile(folder / "train_y.bin")
    source = make_source("stl10", tmp_path, split="train")
    (item,) = source.items()
    assert item.label == 2
    image = source.read_image(item)
    assert image.shape == (96, 96, 3) and image[2, 5, 0] == 200
