"""The segmentation layouts users download: Roboflow exports, category codes, instance maps."""

import numpy as np
import pytest
from PIL import Image

from sslseg.data.sources import make_source
from sslseg.data.sources.base import read_label_image
from sslseg.data.splits import has_layout_split, layout_split, pretraining_rows
from sslseg.data.store import build_store
from sslseg.errors import SslsegError


def _pair(folder, stem, mask_value=1, size=(8, 8)):
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (90, 120, 30)).save(folder / f"{stem}.jpg")
    mask = np.zeros(size[::-1], np.uint8)
    mask[:4] = mask_value
    Image.fromarray(mask).save(folder / f"{stem}_mask.png")


def _roboflow(root):
    _pair(root / "train", "PV01_1_2_jpg.rf.aa")
    _pair(root / "train", "PV01_1_2_jpg.rf.bb")  # a second augmented copy of tile PV01_1_2
    _pair(root / "train", "PV01_3_4_jpg.rf.cc")
    _pair(root / "train", "PV01_5_6_jpg.rf.dd")
    _pair(root / "valid", "PV01_7_8_jpg.rf.ee")
    _pair(root / "test", "PV01_9_9_jpg.rf.ff")
    _pair(root / "test", "PV03_1_1_jpg.rf.gg")
    return root


def test_roboflow_export_pairs_by_suffix_and_keeps_its_splits(tmp_path):
    source = make_source("seg-folder", _roboflow(tmp_path))
    items = source.items()
    assert len(items) == 7  # the _mask files are masks, not items
    by_id = {it.id: it for it in items}
    copy = by_id["train/PV01_1_2_jpg.rf.bb"]
    assert copy.split == "train" and copy.group == "PV01_1_2"
    assert copy.mask.name == "PV01_1_2_jpg.rf.bb_mask.png"
    assert [it.split for it in items].count("val") == 1
    assert source.read_mask(items[0])[:4].all() and not source.read_mask(items[0])[4:].any()


def test_include_keeps_matching_stems(tmp_path):
    items = make_source("seg-folder", _roboflow(tmp_path), include="PV01_*").items()
    assert len(items) == 6 and not any("PV03" in it.id for it in items)


def test_layout_split_keeps_copies_of_a_tile_together_and_nested(tmp_path):
    store = build_store(make_source("seg-folder", _roboflow(tmp_path)), 8, root=tmp_path / "c")
    assert has_layout_split(store.splits)
    whole = layout_split(store.splits, store.groups, 1.0, seed=0)
    assert [store.ids[i] for i in whole.val] == ["valid/PV01_7_8_jpg.rf.ee"]
    assert len(whole.test) == 2 and len(whole.train) == 4
    for fraction in (0.3, 0.6):
        part = layout_split(store.splits, store.groups, fraction, seed=0)
        assert set(part.train) <= set(whole.train)
        groups = {store.groups[i] for i in part.train}
        # a tile is in or out with all its copies
        assert all(store.groups[i] not in groups for i in set(whole.train) - set(part.train))
    # tested on valid + test: validation comes from whole train tiles instead
    both = layout_split(
        store.splits, store.groups, 1.0, 0, val_fraction=0.34, test_from=("val", "test")
    )
    assert len(both.test) == 3
    assert not {store.groups[i] for i in both.val} & {store.groups[i] for i in both.train}
    # pretraining on such a layout sees its train folder only
    rows = pretraining_rows("seg-folder", store.ids, {"fraction": 0.2, "seed": 0}, store.splits)
    assert {store.splits[i] for i in rows} == {"train"}


@pytest.mark.parametrize(
    "options,expected",
    [
        ({"foreground": "nonzero"}, [1, 1, 0]),
        ({"foreground": [211]}, [1, 0, 0]),
        ({"foreground_value": 213}, [0, 1, 0]),
        ({"foreground": "211,213"}, [1, 1, 0]),
    ],
)
def test_category_coded_masks(tmp_path, options, expected):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.new("RGB", (3, 1)).save(tmp_path / "images" / "a.bmp")
    Image.fromarray(np.array([[211, 213, 0]], np.uint8)).save(tmp_path / "masks" / "a.bmp")
    source = make_source("seg-folder", tmp_path, **options)
    assert source.read_mask(source.items()[0])[0].tolist() == expected


def test_category_codes_without_a_rule_name_the_option(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.new("RGB", (3, 1)).save(tmp_path / "images" / "a.bmp")
    Image.fromarray(np.array([[211, 213, 0]], np.uint8)).save(tmp_path / "masks" / "a.bmp")
    source = make_source("seg-folder", tmp_path)
    with pytest.raises(SslsegError, match=r"a\.bmp: mask is not binary.*foreground: nonzero"):
        source.read_mask(source.items()[0])


def test_sixteen_bit_instance_maps_keep_their_ids(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "instances").mkdir()
    Image.new("RGB", (3, 1)).save(tmp_path / "images" / "n.png")
    ids = np.array([[0, 256, 300]], np.uint16)  # 256 would wrap to 0 as uint8
    Image.fromarray(ids).save(tmp_path / "instances" / "n.png")
    assert read_label_image(tmp_path / "instances" / "n.png")[0].tolist() == [0, 256, 300]
    source = make_source("seg-folder", tmp_path, masks="instances", foreground="nonzero")
    assert source.read_mask(source.items()[0])[0].tolist() == [0, 1, 1]
    # pretraining on the same folder reads images/ only, never the label maps
    assert [it.id for it in make_source("image-folder", tmp_path).items()] == ["n"]


def test_image_folder_skips_mask_files_and_treats_split_folders_as_splits(tmp_path):
    items = make_source("image-folder", _roboflow(tmp_path)).items()
    assert len(items) == 7 and not any(it.id.endswith("_mask") for it in items)
    assert {it.split for it in items} == {"train", "val", "test"}


def test_every_image_without_a_mask_is_named_at_once(tmp_path):
    root = _roboflow(tmp_path)
    (root / "train" / "PV01_3_4_jpg.rf.cc_mask.png").unlink()
    (root / "train" / "PV01_5_6_jpg.rf.dd_mask.png").unlink()
    with pytest.raises(SslsegError, match=r"2 image\(s\) without.*rf\.cc\.jpg, .*rf\.dd\.jpg"):
        make_source("seg-folder", root).items()


def test_every_bad_file_is_named_in_one_error_and_nothing_is_left(tmp_path):
    root = _roboflow(tmp_path / "data")
    (root / "train" / "PV01_3_4_jpg.rf.cc.jpg").write_bytes(b"not a jpeg")
    (root / "test" / "PV01_9_9_jpg.rf.ff_mask.png").write_bytes(b"broken")
    cache = tmp_path / "cache"
    with pytest.raises(SslsegError, match=r"2 of 7 files are bad: .*rf\.ff_mask\.png.*rf\.cc\.jpg"):
        build_store(make_source("seg-folder", root), 8, root=cache)
    assert not any(cache.iterdir())


def test_unknown_layout_and_bad_foreground_are_one_line(tmp_path):
    with pytest.raises(SslsegError, match="layout: 'coco' is not one of"):
        make_source("seg-folder", _roboflow(tmp_path), layout="coco")
    with pytest.raises(SslsegError, match="foreground: 'panel' is not auto, nonzero"):
        make_source("seg-folder", tmp_path, foreground="panel")
