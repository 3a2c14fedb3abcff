"""Pseudo-label seg-folders: the cache's masks for the right images (by content hash), and the
confidence rule on hand-made masks."""

from __future__ import annotations

import numpy as np
import pytest

from sslseg.data.store import open_store
from sslseg.errors import SslsegError
from sslseg.saliency.cache import fill_store
from sslseg.saliency.pseudo import (
    SEG_FOLDER_OPTIONS,
    ConfidenceRule,
    Part,
    file_name,
    mask_area,
    pseudo_labels,
    pseudo_parts,
    saliency_contrast,
    write_seg_folder,
)

SIDE = 32


@pytest.fixture(scope="module")
def sample():
    store = open_store("sample", side=SIDE, progress=False).subset(np.arange(12))
    return store, pseudo_labels(store, workers=1, progress=False)


def test_written_folder_holds_the_cache_masks_of_the_same_pixels(sample, tmp_path):
    store, labels = sample
    rule = ConfidenceRule(min_area=0.05, max_area=0.95)
    rows = {"train": np.arange(8), "val": np.arange(8, 12)}
    folder = write_seg_folder(tmp_path / "pseudo", store, pseudo_parts(labels, rule, rows))
    written = open_store(
        "seg-folder", folder, side=SIDE, cache=tmp_path / "st", progress=False, **SEG_FOLDER_OPTIONS
    )
    kept = labels.kept(rule)
    assert len(written) == int(kept.sum()) > 0
    # every written image decodes to the very pixels of its original: same content hash, so
    # the cache entry is found from the copy, and its mask is the one written beside it
    cache, _ = fill_store(store, workers=1, progress=False)
    original = {file_name(i): h for i, h in zip(store.ids, store.hashes, strict=True)}
    for item_id, key, mask in zip(written.ids, written.hashes, written.masks, strict=True):
        split, name = item_id.split("/")
        assert key == original[name]
        np.testing.assert_array_equal(mask, cache.entry(key).mask.astype(np.uint8))
        assert split in ("train", "valid")
    assert sorted(written.splits) == sorted(
        ["train"] * int(kept[:8].sum()) + ["val"] * int(kept[8:].sum())
    )


def test_real_parts_keep_every_image_and_ignored_pixels_are_refused(sample, tmp_path):
    store, _ = sample
    rows = np.arange(4)
    real = Part(rows, np.asarray(store.masks[rows]), "real")
    folder = write_seg_folder(tmp_path / "real", store, {"test": real})
    written = open_store("seg-folder", folder, side=SIDE, cache=tmp_path / "st", progress=False)
    np.testing.assert_array_equal(written.masks, store.masks[rows])
    masks = np.asarray(store.masks[rows]).copy()
    masks[0, 0, 0] = 255
    with pytest.raises(SslsegError, match="border"):
        write_seg_folder(tmp_path / "bad", store, {"test": Part(rows, masks, "real")})
    assert not (tmp_path / "bad").exists()


def _disc_case(radius: int, inside: int, outside: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[:20, :20]
    mask = ((yy - 10) ** 2 + (xx - 10) ** 2 <= radius**2).astype(np.uint8)
    return mask, np.where(mask == 1, inside, outside).astype(np.uint8)


def test_area_and_contrast_by_hand():
    mask = np.zeros((10, 10), np.uint8)
    mask[:3] = 1  # 30 of 100 pixels
    saliency = np.where(mask == 1, 204, 51).astype(np.uint8)
    assert mask_area(mask) == pytest.approx(0.3)
    assert saliency_contrast(mask, saliency) == pytest.approx((204 - 51) / 255)
    assert saliency_contrast(np.zeros_like(mask), saliency) == 0.0
    assert saliency_contrast(np.ones_like(mask), saliency) == 0.0


@pytest.mark.parametrize(
    ("radius", "inside", "outside", "kept", "why"),
    [
        (5, 230, 20, True, ""),  # a clear object: kept
        (0, 230, 20, False, "area"),  # a single pixel: too small
        (30, 230, 20, False, "area"),  # covers the frame: too large
        (5, 120, 100, False, "contrast"),  # barely more salient than the rest
        (5, 20, 230, False, "contrast"),  # less salient than the rest
    ],
)
def test_confidence_rule_keeps_and_drops_hand_made_cases(radius, inside, outside, kept, why):
    rule = ConfidenceRule(min_area=0.05, max_area=0.9, min_contrast=0.2)
    mask, saliency = _disc_case(radius, inside, outside)
    area, contrast = mask_area(mask), saliency_contrast(mask, saliency)
    assert rule.keeps(area, contrast) is kept
    assert rule.reason(area, contrast).startswith(why)


def test_parts_leave_out_what_the_rule_drops(sample):
    store, labels = sample
    rule = ConfidenceRule(min_area=float(np.median(labels.area)))
    parts = pseudo_parts(labels, rule, {"train": np.arange(12)})
    assert set(parts["train"].rows) == set(np.flatnonzero(labels.area >= rule.min_area))
    np.testing.assert_array_equal(parts["train"].masks, labels.masks[parts["train"].rows])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"min_area": 1.5}, "confidence.min_area"),
        ({"min_area": 0.6, "max_area": 0.5}, "confidence.min_area"),
        ({"min_contrast": 2.0}, "confidence.min_contrast"),
    ],
)
def test_impossible_rules_are_one_line(values, message):
    with pytest.raises(SslsegError, match=message) as info:
        ConfidenceRule(**values)
    assert "\n" not in str(info.value)


def test_ids_become_flat_file_names():
    assert file_name("cat/cat.12") == "cat__cat.12"
    assert file_name("tile_mask") == "tile_mask_img"
