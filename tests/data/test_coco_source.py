"""The ``coco`` source: a folder of images and a COCO instances JSON (polygons or RLE)."""

import json

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from sslseg.data.sources import IGNORE, make_source
from sslseg.data.splits import has_layout_split
from sslseg.data.store import build_store
from sslseg.errors import SslsegError

JSON = "_annotations.coco.json"


def _rle(mask):
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": rle["size"], "counts": rle["counts"].decode("ascii")}


def _expected():
    """The hand-made instance maps of a.png (6 x 8) and b.png (4 x 5)."""
    a = np.zeros((6, 8), np.int32)
    a[1:4, 1:6] = 1  # the polygon (1,1)-(6,4): columns 1..5, rows 1..3
    a[2:5, 4:8] = 2  # the RLE, drawn over the polygon where they overlap
    b = np.zeros((4, 5), np.int32)
    b[2:4, 0:2] = 1
    return a, b


def _coco(images=("a", "b")):
    a, b = _expected()
    second = np.zeros((6, 8), bool)
    second[2:5, 4:8] = True
    entries = {
        "a": {"id": 1, "file_name": "a.png", "width": 8, "height": 6},
        "b": {"id": 2, "file_name": "b.png", "width": 5, "height": 4},
    }
    anns = {
        "a": [
            {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
             "segmentation": [[1, 1, 6, 1, 6, 4, 1, 4]]},
            {"id": 2, "image_id": 1, "category_id": 2, "iscrowd": 0,
             "segmentation": _rle(second)},
        ],
        "b": [
            # a crowd region: column 4 (uncompressed, column-major RLE as COCO writes crowds)
            {"id": 3, "image_id": 2, "category_id": 1, "iscrowd": 1,
             "segmentation": {"size": [4, 5], "counts": [16, 4]}},
            {"id": 4, "image_id": 2, "category_id": 1, "iscrowd": 0,
             "segmentation": [[0, 2, 2, 2, 2, 4, 0, 4]]},
        ],
    }  # fmt: skip
    return {
        "images": [entries[k] for k in images],
        "annotations": [ann for k in images for ann in anns[k]],
        "categories": [{"id": 1, "name": "nucleus"}, {"id": 2, "name": "debris"}],
    }


def _folder(folder, images=("a", "b"), data=None):
    folder.mkdir(parents=True, exist_ok=True)
    sizes = {"a": (8, 6), "b": (5, 4)}
    for name in images:
        Image.new("RGB", sizes[name], (40, 80, 120)).save(folder / f"{name}.png")
    (folder / JSON).write_text(json.dumps(data or _coco(images)))
    return folder


def test_masks_and_instance_maps_by_hand(tmp_path):
    source = make_source("coco", _folder(tmp_path))
    items = source.items()
    assert [it.id for it in items] == ["a", "b"] and {it.split for it in items} == {""}
    a, b = _expected()
    ids_a, ids_b = (source.read_instances(it) for it in items)
    assert ids_a.dtype == np.int32 and (ids_a == a).all() and (ids_b == b).all()
    assert (source.read_mask(items[0]) == (a > 0)).all()
    # the crowd region is no instance and is ignored in the union mask
    mask_b = source.read_mask(items[1])
    assert (mask_b[:, 4] == IGNORE).all() and (mask_b[:, :4] == (b[:, :4] > 0)).all()
    store = build_store(source, 8, root=tmp_path / "cache", progress=False)
    assert store.ids == ["a", "b"] and store.masks.shape == (2, 8, 8)


def test_roboflow_split_folders_keep_their_splits(tmp_path):
    _folder(tmp_path / "train", ("a",))
    _folder(tmp_path / "valid", ("b",))
    _folder(tmp_path / "test", ("a",))
    source = make_source("coco", tmp_path)
    items = source.items()
    assert [(it.id, it.split) for it in items] == [
        ("test/a", "test"),
        ("train/a", "train"),
        ("valid/b", "val"),
    ]
    assert items[0].group == items[1].group == "a"
    assert (source.read_instances(items[2]) == _expected()[1]).all()
    store = build_store(source, 8, root=tmp_path / "cache", progress=False)
    assert has_layout_split(store.splits)
    # an explicit file (or the file as root) reads one split-less JSON
    one = make_source("coco", tmp_path, annotations=f"train/{JSON}", images="train")
    assert [it.id for it in one.items()] == ["a"]
    assert [it.id for it in make_source("coco", tmp_path / "valid" / JSON).items()] == ["b"]
    # a split folder without its own file is an error, not a split silently left out
    (tmp_path / "test" / JSON).unlink()
    with pytest.raises(SslsegError) as exc:
        make_source("coco", tmp_path)
    _one_line(exc, f"test/{JSON}: COCO annotations file not found")


@pytest.mark.parametrize(
    "categories,kept",
    [(["debris"], [2]), ([1], [1]), ("2", [2]), (["nucleus", "debris"], [1, 2])],
)
def test_category_filter_keeps_those_annotations(tmp_path, categories, kept):
    source = make_source("coco", _folder(tmp_path), categories=categories)
    ids = source.read_instances(source.items()[0])
    a = _expected()[0]
    # the kept annotations are renumbered 1..N in JSON order
    assert sorted(np.unique(ids[ids > 0]).tolist()) == list(range(1, len(kept) + 1))
    if kept == [2]:
        assert ((ids == 1) == (a == 2)).all()
    if kept == [1]:  # alone, the polygon keeps the pixels the RLE drew over
        assert ((ids == 1) == np.pad(np.ones((3, 5), bool), ((1, 2), (1, 2)))).all()


def _one_line(exc_info, *names):
    message = str(exc_info.value)
    assert "\n" not in message
    for name in names:
        assert name in message
    return message


def test_unknown_category_is_one_line_naming_the_file(tmp_path):
    with pytest.raises(SslsegError) as exc:
        make_source("coco", _folder(tmp_path), categories=["cat"]).items()
    message = _one_line(exc, "'cat'", JSON)
    assert "debris (2)" in message and "nucleus (1)" in message


def test_missing_unreadable_or_not_coco_json(tmp_path):
    with pytest.raises(SslsegError) as exc:
        make_source("coco", tmp_path)
    _one_line(exc, f"{JSON}: COCO annotations file not found")
    (tmp_path / JSON).write_text("{not json")
    with pytest.raises(SslsegError) as exc:
        make_source("coco", tmp_path).items()
    _one_line(exc, f"{JSON}: not a readable JSON file")
    for data, what in [
        ([1, 2], "not a JSON object"),
        ({"images": [], "annotations": []}, "no 'categories' list"),
        ({"images": [{"id": 1}], "annotations": [], "categories": []}, "has no 'file_name'"),
        ({**_coco(), "images": _coco()["images"] * 2}, "image id 1 twice"),
    ]:
        (tmp_path / JSON).write_text(json.dumps(data))
        with pytest.raises(SslsegError) as exc:
            make_source("coco", tmp_path).items()
        _one_line(exc, f"{JSON}: not a COCO instances file", what)


def test_bad_annotations_are_named_at_once(tmp_path):
    data = _coco()
    data["annotations"][0]["image_id"] = 99
    data["annotations"][1]["segmentation"]["size"] = [8, 6]  # width and height swapped
    data["annotations"][3]["segmentation"] = [[0, 2, 2, 2, 2]]
    with pytest.raises(SslsegError) as exc:
        make_source("coco", _folder(tmp_path, data=data)).items()
    message = _one_line(exc, JSON, "3 bad annotation(s)")
    assert "annotation 1: image id 99 is not in 'images'" in message
    assert "annotation 2 ('a.png'): RLE size [8, 6]" in message
    assert "annotation 4 ('b.png'): a polygon has 5 coordinates" in message


def test_images_missing_on_disk_are_named_at_once(tmp_path):
    _folder(tmp_path)
    (tmp_path / "a.png").unlink()
    (tmp_path / "b.png").unlink()
    with pytest.raises(SslsegError) as exc:
        make_source("coco", tmp_path).items()
    _one_line(exc, JSON, "2 image(s) listed but not found", "a.png, b.png")


def test_an_image_of_another_size_than_its_entry(tmp_path):
    _folder(tmp_path)
    Image.new("RGB", (7, 6)).save(tmp_path / "a.png")
    source = make_source("coco", tmp_path)
    with pytest.raises(SslsegError) as exc:
        source.read_instances(source.items()[0])
    _one_line(exc, JSON, "'a.png' is 7x6 on disk but 8x6 in the JSON")
    with pytest.raises(SslsegError) as exc:
        build_store(source, 8, root=tmp_path / "cache", progress=False)
    _one_line(exc, "'a.png' is 7x6 on disk")


def test_instance_map_round_trip_through_coco_json(tmp_path):
    from sslseg.det.coco import encode

    rng = np.random.default_rng(0)
    originals = []
    images, annotations = [], []
    for j in range(3):
        ids = np.zeros((20, 24), np.int32)
        for k, value in enumerate(rng.choice(np.arange(2, 60000), 5, replace=False)):
            y, x = rng.integers(0, 16), rng.integers(0, 20)
            ids[y : y + 1 + k, x : x + 2 + k] = value  # later ids may cover earlier ones
        Image.new("RGB", (24, 20)).save(tmp_path / f"{j}.png")
        images.append({"id": j + 1, "file_name": f"{j}.png", "width": 24, "height": 20})
        for value in np.unique(ids[ids > 0]):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": j + 1,
                    "category_id": 1,
                    "iscrowd": 0,
                    "segmentation": encode(ids == value),
                }
            )
        originals.append(ids)
    data = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "x"}]}
    (tmp_path / "instances.json").write_text(json.dumps(data))
    source = make_source("coco", tmp_path, annotations="instances.json")
    for item, ids in zip(source.items(), originals):
        back = source.read_instances(item)
        # the same partition: 1..N in annotation order, i.e. in the order of sorted ids
        values = np.unique(ids[ids > 0])
        relabel = np.zeros(ids.max() + 1, np.int32)
        relabel[values] = np.arange(1, len(values) + 1)
        assert len(values) >= 3 and (back == relabel[ids]).all()


def test_detect_reads_coco_instance_maps(tmp_path):
    from sslseg.det.train import DetectConfig, instance_rule, load_detection_data

    _folder(tmp_path / "data")
    config = DetectConfig(
        source="coco", root=str(tmp_path / "data"), side=32, min_area=1, cache=str(tmp_path / "c")
    )
    assert instance_rule(config) == "map"
    data = load_detection_data(config, progress=False)
    # at 32 px: a.png's two instances, b.png's one (the crowd is none)
    assert [len(m) for m in data.masks] == [2, 1]
    assert data.store.masks[1].max() == IGNORE  # the crowd column, in the binary mask only
