"""seg-folder's per-image class labels from mask codes, and excluding tiles by stem."""

import json

import numpy as np
import pytest
from PIL import Image

from sslseg.data.sources import make_source
from sslseg.data.store import build_store, open_store_folder
from sslseg.errors import SslsegError


def _coded(root, masks):
    """A folders-layout seg-folder: one 4x4 image per mask (``name -> 2-D code array``)."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for name, codes in masks.items():
        Image.new("RGB", (4, 4), (10 * len(name), 80, 40)).save(root / "images" / f"{name}.bmp")
        Image.fromarray(np.asarray(codes, np.uint8)).save(root / "masks" / f"{name}.bmp")
    return root


def _mask(**counts):
    """A 4x4 mask holding ``counts[code]`` pixels of each code (``c211=3``), the rest 0."""
    flat = [int(code[1:]) for code, n in counts.items() for _ in range(n)]
    return np.array(flat + [0] * (16 - len(flat))).reshape(4, 4)


@pytest.fixture
def pv(tmp_path):
    return _coded(
        tmp_path / "pv",
        {
            "a": _mask(c211=5),
            "b": _mask(c213=2),
            "c": _mask(c211=3, c213=6),  # mostly 213
            "d": _mask(c211=4, c213=4),  # a tie: the smaller code
            "e": _mask(),  # all zero
        },
    )


def _labels(source):
    return {it.id: source.class_names[it.label] for it in source.items()}


def test_mask_code_labels_are_the_most_frequent_nonzero_code(pv):
    source = make_source("seg-folder", pv, foreground="nonzero", labels="mask-code")
    labels = _labels(source)  # class_names are filled when the items are listed
    assert source.class_names == ["none", "211", "213"]  # code order; 0 = the all-zero mask
    assert labels == {"a": "211", "b": "213", "c": "213", "d": "211", "e": "none"}
    # without the option the items stay unlabelled
    plain = make_source("seg-folder", pv, foreground="nonzero")
    assert {it.label for it in plain.items()} == {-1} and plain.class_names == []


def test_code_names_rename_merge_and_empty_masks_drop(pv):
    named = make_source(
        "seg-folder",
        pv,
        foreground="nonzero",
        labels="mask-code",
        code_names={211: "flat-concrete", "213": "brick", 0: "no-roof", 999: "unused"},
    )
    labels = _labels(named)
    assert named.class_names == ["no-roof", "flat-concrete", "brick"]
    assert labels["c"] == "brick" and labels["e"] == "no-roof"
    merged = make_source(
        "seg-folder", pv, labels="mask-code", code_names={211: "roof", 213: "roof"}
    )
    assert [it.label for it in merged.items()] == [1, 1, 1, 1, 0]
    assert merged.class_names == ["none", "roof"]
    dropped = make_source("seg-folder", pv, labels="mask-code", empty_masks="drop")
    assert [it.id for it in dropped.items()] == ["a", "b", "c", "d"]
    assert dropped.class_names == ["211", "213"]


def test_store_keeps_the_labels_and_a_changed_option_makes_another_store(pv, tmp_path):
    cache = tmp_path / "cache"
    options = dict(foreground="nonzero", labels="mask-code", code_names={211: "flat"})
    store = build_store(make_source("seg-folder", pv, **options), 8, root=cache, progress=False)
    assert store.labels.tolist() == [1, 2, 2, 1, 0]
    assert store.class_names == ["none", "flat", "213"]
    again = open_store_folder(store.root)
    assert again.labels.tolist() == store.labels.tolist() and again.class_names == store.class_names
    index = json.loads((store.root / "index.json").read_text())
    assert index["options"]["labels"] == "mask-code"
    assert index["options"]["code_names"] == {"211": "flat"}
    # new names for the same codes (same integer labels) are another store, not the old one
    renamed = dict(options, code_names={211: "flat-concrete"})
    other = build_store(make_source("seg-folder", pv, **renamed), 8, root=cache, progress=False)
    assert other.root != store.root and other.class_names == ["none", "flat-concrete", "213"]
    plain = build_store(make_source("seg-folder", pv, foreground="nonzero"), 8, root=cache)
    assert plain.root not in (store.root, other.root) and set(plain.labels.tolist()) == {-1}


def test_defaults_leave_the_store_options_as_before(pv):
    # folders read without the new options keep their store key (no re-decoding)
    options = make_source("seg-folder", pv, foreground="nonzero").options()
    assert set(options) == {"foreground", "layout", "mask_suffix", "include"}


def _roboflow(root):
    for split, stems in {
        "train": ["T1_jpg.rf.a", "T1_jpg.rf.b", "T2_jpg.rf.c", "T3_jpg.rf.d", "T4_jpg.rf.e"],
        "valid": ["T5_jpg.rf.f"],
        "test": ["T2x_jpg.rf.g", "T6_jpg.rf.h"],
    }.items():
        (root / split).mkdir(parents=True)
        for stem in stems:
            Image.new("RGB", (4, 4)).save(root / split / f"{stem}.jpg")
            Image.fromarray(np.ones((4, 4), np.uint8)).save(root / split / f"{stem}_mask.png")
    return root


def test_exclude_groups_drops_exactly_the_named_tiles_with_all_their_copies(tmp_path):
    root = _roboflow(tmp_path / "rf")
    every = [it.id for it in make_source("seg-folder", root).items()]
    kept = make_source("seg-folder", root, exclude_groups=["T1", "T5"]).items()
    gone = {"train/T1_jpg.rf.a", "train/T1_jpg.rf.b", "valid/T5_jpg.rf.f"}
    assert [it.id for it in kept] == [i for i in every if i not in gone]
    # a stem is a whole tile name, not a prefix: T2 leaves T2x
    only = make_source("seg-folder", root, exclude_groups="T2").items()
    assert [it.id for it in only if "T2" in it.id] == ["test/T2x_jpg.rf.g"]
    assert make_source("seg-folder", root, exclude_groups="T2").options()["exclude_groups"] == [
        "T2"
    ]


def test_exclude_like_takes_the_stems_of_another_folder(tmp_path):
    root = _roboflow(tmp_path / "rf")
    original = _coded(tmp_path / "original", {"T3": _mask(c211=1), "T6": _mask(), "T9": _mask()})
    source = make_source("seg-folder", root, exclude_like=str(original))
    ids = [it.id for it in source.items()]
    assert len(ids) == 6 and not any(i.split("/")[1].split("_")[0] in ("T3", "T6") for i in ids)
    assert source.options()["exclude_groups"] == ["T3", "T6", "T9"]
    # a folder whose stems are not in the root at all is a mistake
    other = _coded(tmp_path / "other", {"Z1": _mask()})
    with pytest.raises(SslsegError, match=r"exclude_like: no image of .* has the stem"):
        make_source("seg-folder", root, exclude_like=str(other)).items()


@pytest.mark.parametrize(
    "options,message",
    [
        ({"labels": "codes"}, "source_options.labels: 'codes' is not one of none, mask-code"),
        (
            {"labels": "mask-code", "empty_masks": "skip"},
            "source_options.empty_masks: 'skip' is not one of label, drop",
        ),
        ({"code_names": {211: "a"}}, "source_options.code_names: needs labels: mask-code"),
        ({"empty_masks": "drop"}, "source_options.empty_masks: needs labels: mask-code"),
        (
            {"labels": "mask-code", "code_names": "flat"},
            "source_options.code_names: 'flat' is not a mapping of mask codes",
        ),
        (
            {"labels": "mask-code", "code_names": {"roof": "a"}},
            "source_options.code_names: key 'roof' is not a mask value",
        ),
        (
            {"labels": "mask-code", "code_names": {211: None}},
            "source_options.code_names: 211: 'None' is not a mask value and a class name",
        ),
        ({"exclude_groups": ["T1", ""]}, "source_options.exclude_groups: .* is not a list"),
        ({"exclude_groups": ["T1", "T7"]}, r"exclude_groups: 1 name\(s\) match no image.*: T7"),
        ({"exclude_like": "nowhere"}, "source_options.exclude_like: nowhere: folder not found"),
    ],
)
def test_bad_values_are_one_line_naming_the_option(tmp_path, options, message):
    root = _roboflow(tmp_path / "rf")
    with pytest.raises(SslsegError, match=message) as info:
        make_source("seg-folder", root, **options).items()
    assert "\n" not in str(info.value) and str(info.value).startswith("config: source_options.")


def test_every_mask_all_zero_with_drop_is_one_line(tmp_path):
    root = _coded(tmp_path / "z", {"a": _mask(), "b": _mask()})
    with pytest.raises(SslsegError, match="every mask is all zero"):
        make_source("seg-folder", root, labels="mask-code", empty_masks="drop").items()


def test_pv01_original_codes(shared_data):
    root = shared_data / "multires-pv" / "pv01-original"
    if not root.is_dir():
        pytest.skip("pv01-original is not present")
    source = make_source("seg-folder", root, foreground="nonzero", labels="mask-code")
    labels = [source.class_names[it.label] for it in source.items()]
    assert source.class_names == ["none", "211", "213"]
    assert [labels.count(n) for n in source.class_names] == [1, 40, 39]  # as SOURCE.txt says
