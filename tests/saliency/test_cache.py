"""Saliency cache: content keys, crash safety, concurrent fillers, settings checks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sslseg.data.store import content_hash, open_store
from sslseg.errors import SslsegError
from sslseg.saliency import cache as cache_mod
from sslseg.saliency.cache import SaliencyCache, fill_store
from sslseg.saliency.cache import analyse_seeded as analyse

SAMPLE = Path(__file__).resolve().parents[2] / "src/sslseg/data/sample/oxford-iiit-pet/images"
SIDE = 32


def _images(n: int) -> np.ndarray:
    store = open_store("sample", side=SIDE, progress=False)
    return np.array(store.images[:n])


class Boom(RuntimeError):
    pass


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
    # the entry is the analysis of exactly those pixels
    ref = analyse(np.array(sa.images[0]))
    got = cache.entry(sa.hashes[0])
    np.testing.assert_array_equal(got.labels, ref.labels)
    np.testing.assert_array_equal(got.palette, ref.palette)
    np.testing.assert_array_equal(got.mask, ref.mask)


def test_killed_fill_leaves_usable_cache(tmp_path, monkeypatch):
    images = _images(5)
    keys = [content_hash(im) for im in images]
    folder = tmp_path / "c"
    monkeypatch.setattr(cache_mod, "COMMIT_EVERY", 2)

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
    assert len(fp) == 8 and folder.name == f"cats-vs-dogs-64px-x2-t70-v1-{fp}"
