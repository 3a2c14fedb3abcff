"""Saliency cache: content keys, crash safety, concurrent fillers, settings checks, and
entries computed from the source images rather than the small store images."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sslseg.data.sources import read_rgb
from sslseg.data.store import content_hash, open_store, resize_image
from sslseg.errors import SslsegError
from sslseg.saliency import cache as cache_mod
from sslseg.saliency.cache import SaliencyCache, fill_store, filling, shrink, working_image
from sslseg.saliency.cache import analyse_seeded as analyse

SAMPLE = Path(__file__).resolve().parents[2] / "src/sslseg/data/sample/oxford-iiit-pet/images"
SIDE = 32


def _images(n: int) -> np.ndarray:
    store = open_store("sample", side=SIDE, progress=False)
    return np.array(store.images[:n])


class Boom(RuntimeError):
    pass


def _entry(row: tuple[np.ndarray, ...]) -> cache_mod.Entry:
    labels, palette, salient, smap = row
    return cache_mod.Entry(labels, palette, salient, smap)


def test_same_content_under_another_name_hits(tmp_path):
    files = sorted(SAMPLE.glob("*.jpg"))[:4]
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    for f in files[:3]:
        shutil.copy(f, a / f.name)
        shutil.copy(f, b / f"renamed_{f.stem[::-1]}.jpg")  # same bytes, another name
    shutil.copy(files[3], b / files[3].name)
    cache_root = tmp_path / "sal"
    sa = open_store("image-folder", a, side=SIDE, cache=tmp_path / "st", progress=False)
    sb = open_store("image-folder", b, side=SIDE, cache=tmp_path / "st", progress=False)
    assert sa.ids != sb.ids[:3]
    cache, rows_a = fill_store(sa, workers=2, progress=False, root=cache_root)  # process pool
    assert len(cache) == 3
    # the renamed files are found by their pixels, only the new image is analysed
    hits = cache.rows(sb.hashes)
    assert (hits >= 0).sum() == 3
    assert cache.fill(sb.images, sb.hashes, workers=1, progress=False) == 1
    assert len(cache) == 4
    # a decoded copy (no file at all) hits too
    assert content_hash(np.array(sa.images[0])) in cache
    # the entry is the analysis of the source file of those pixels, resized to the rows
    src = read_rgb(a / f"{sa.ids[0]}.jpg")
    work = working_image(src, SIDE)
    ref = _entry(shrink(analyse(work), work, (SIDE, SIDE)))
    got = cache.entry(sa.hashes[0])
    np.testing.assert_array_equal(got.labels, ref.labels)
    np.testing.assert_array_equal(got.palette, ref.palette)
    np.testing.assert_array_equal(got.mask, ref.mask)


def test_killed_fill_leaves_usable_cache(tmp_path, monkeypatch):
    images = _images(5)
    keys = [content_hash(im) for im in images]
    folder = tmp_path / "c"
    monkeypatch.setattr(filling, "COMMIT_EVERY", 2)

    def die(_rows: int) -> None:
        raise Boom

    cache = SaliencyCache(folder, SIDE)
    with pytest.raises(Boom):
        cache.fill(images, keys, workers=1, progress=False, on_commit=die)
    # a writer killed between its appends and its index commit: junk past the committed rows
    with open(folder / "labels.bin", "ab") as fh:
        fh.write(b"\xff" * 777)
    (folder / ".index.999.tmp.npy").write_bytes(b"half a file")

    reopened = SaliencyCache(folder, SIDE)
    assert len(reopened) == 2
    for k, im in zip(keys[:2], images[:2], strict=True):
        np.testing.assert_array_equal(reopened.entry(k).labels, analyse(im).labels)
    assert reopened.fill(images, keys, workers=1, progress=False) == 3
    final = SaliencyCache(folder, SIDE)
    assert len(final) == 5 and (final.rows(keys) == np.arange(5)).all()
    for k, im in zip(keys, images, strict=True):
        ref = analyse(im)
        e = final.entry(k)
        np.testing.assert_array_equal(e.labels, ref.labels)
        np.testing.assert_array_equal(e.palette, ref.palette)
        np.testing.assert_array_equal(e.salient, ref.salient)


_FILL = """
import sys, numpy as np
from sslseg.saliency.cache import SaliencyCache
images = np.load(sys.argv[2])[:: int(sys.argv[3])]
SaliencyCache(sys.argv[1], int(sys.argv[4])).fill(images, workers=1, progress=False)
"""


def test_two_processes_filling_at_once(tmp_path):
    images = _images(6)
    np.save(tmp_path / "images.npy", images)
    folder = str(tmp_path / "c")
    # two independent interpreters, in opposite order, racing for the same entries
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _FILL, folder, str(tmp_path / "images.npy"), s, str(SIDE)]
        )
        for s in ("1", "-1")
    ]
    for p in procs:
        assert p.wait(120) == 0
    cache = SaliencyCache(folder, SIDE)
    keys = [content_hash(im) for im in images]
    assert len(cache) == 6 and sorted(cache.hashes.tolist()) == sorted(keys)
    for k, im in zip(keys, images, strict=True):
        np.testing.assert_array_equal(cache.entry(k).labels, analyse(im).labels)


def test_settings_are_checked(tmp_path):
    SaliencyCache(tmp_path / "c", SIDE, scale=1)
    with pytest.raises(SslsegError, match="side=32"):
        SaliencyCache(tmp_path / "c", 64)
    with pytest.raises(SslsegError, match="scale"):
        SaliencyCache(tmp_path / "d", SIDE, scale=3)
    with pytest.raises(SslsegError, match="not a saliency cache"):
        SaliencyCache(tmp_path / "nothing")


def test_upscaled_cache_holds_2x_label_maps(tmp_path):
    images = _images(2)
    cache = SaliencyCache(tmp_path / "c", SIDE, scale=2)
    cache.fill(images, workers=1, progress=False)
    assert cache.labels.shape == (2, 2 * SIDE, 2 * SIDE)
    ref = analyse(images[1], scale=2)
    np.testing.assert_array_equal(cache.entry(content_hash(images[1])).labels, ref.labels)


def test_default_folder_names_settings_and_saliency_code(tmp_path):
    folder = cache_mod.default_folder("cats-vs-dogs", 64, 2, root=tmp_path)
    fp = cache_mod.algorithm_fingerprint()
    assert (
        len(fp) == 8 and folder.name == f"cats-vs-dogs-64px-x2-t70-w{cache_mod.SOURCE_SIDE}-v2-{fp}"
    )
    assert cache_mod.default_folder("cats-vs-dogs", 64, 2, root=tmp_path, source_side=100) != folder


def _cross(side: int = 512, width: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """A thin orange cross on a noisy green ground (``width`` px arms: 3 px at 64)."""
    rng = np.random.default_rng(0)
    img = np.empty((side, side, 3), np.float64)
    img[:] = (70, 110, 80)
    img += rng.normal(0, 6, img.shape)
    obj = np.zeros((side, side), bool)
    lo, hi = (side - width) // 2, (side + width) // 2
    obj[side // 5 : side - side // 5, lo:hi] = True
    obj[lo:hi, side // 5 : side - side // 5] = True
    img[obj] = (235, 170, 40)
    return np.clip(img, 0, 255).astype(np.uint8), obj


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_entries_come_from_the_source_image_so_a_thin_structure_survives(tmp_path):
    import cv2

    img, obj = _cross()
    folder = tmp_path / "src"
    folder.mkdir()
    cv2.imwrite(str(folder / "cross.png"), img[:, :, ::-1])
    store = open_store("image-folder", folder, side=64, cache=tmp_path / "st", progress=False)
    gt = resize_image(obj.astype(np.uint8) * 255, 64, "squash") > 127
    # on the 64-px store image the 3-px arms are below RC's 200-px regions: nothing is found
    small = analyse(np.array(store.images[0]))
    assert _iou(small.mask, gt) < 0.3
    # the cache computes on the 512-px source and resizes: the cross survives
    cache, rows = fill_store(store, workers=1, progress=False, root=tmp_path / "sal")
    e = cache.entry(store.hashes[0])
    assert e.labels.shape == (64, 64) and rows.tolist() == [0]
    assert _iou(e.mask, gt) > 0.9
    assert e.saliency[gt].mean() > 4 * max(e.saliency[~gt].mean(), 1)
    # every label is wholly object or background, and the palette is the labels' mean colour
    small_img = np.array(store.images[0]).astype(float)
    for k in range(len(e.palette)):
        assert np.abs(small_img[e.labels == k].mean(0) - e.palette[k]).max() < 2.5


def test_a_store_image_filled_as_its_own_source_is_analysed_unchanged():
    im = _images(1)[0]
    work = working_image(im, SIDE)
    assert np.array_equal(work, im)
    res = analyse(im)
    labels, palette, salient, smap = shrink(res, im, (SIDE, SIDE))
    np.testing.assert_array_equal(labels, res.labels)
    np.testing.assert_array_equal(salient, res.salient)
    # a large source is capped at source_side (aspect kept), a small one enlarged to the rows
    big, tiny = np.zeros((600, 900, 3), np.uint8), np.zeros((20, 40, 3), np.uint8)
    assert working_image(big, 64, source_side=512).shape == (341, 512, 3)
    assert working_image(big, 64, "center-crop", source_side=256).shape == (256, 256, 3)
    assert working_image(tiny, 64, source_side=512).shape == (32, 64, 3)


def test_a_source_that_no_longer_matches_its_store_image_is_refused(tmp_path):
    images = _images(2)
    cache = SaliencyCache(tmp_path / "c", SIDE)
    other = np.ascontiguousarray(images[::-1])  # each key paired with the wrong source
    with pytest.raises(SslsegError, match="no longer resizes"):
        cache.fill(images, workers=1, progress=False, sources=other)
    assert len(cache) == 0
    assert cache.fill(images, workers=1, progress=False, sources=images) == 2


def test_palette_bound_covers_the_source_regions():
    # 64-px rows from a 512-px copy: at most 2 * 512^2 / 200 labels, and never above 64^2
    assert cache_mod.palette_bound(64, 64, 512) == 2 * (512 * 512 // 200) + 2
    assert cache_mod.palette_bound(16, 16, 512) == 16 * 16 + 2


def test_the_command_fills_a_store_from_its_sources(tmp_path, monkeypatch, capsys):
    files = sorted(SAMPLE.glob("*.jpg"))[:3]
    folder = tmp_path / "imgs"
    folder.mkdir()
    for f in files:
        shutil.copy(f, folder / f.name)
    monkeypatch.setenv("SSLSEG_CACHE", str(tmp_path / "cache"))
    argv = ["--source", "image-folder", "--root", str(folder), "--side", str(SIDE)]
    argv += ["--workers", "1", "--cache-root", str(tmp_path / "sal"), "--source-side", "128"]
    assert cache_mod.main(argv) == 0
    out = capsys.readouterr().out
    assert "3 entries (0 before, 3 added" in out and "-w128-v2-" in out
    assert cache_mod.main(argv) == 0
    assert "3 entries (3 before, 0 added" in capsys.readouterr().out
