"""Whole-image pipeline, parallel batch processing and the ``sslseg saliency`` command."""

import argparse

import cv2
import numpy as np
import pytest

from sslseg.errors import SslsegError
from sslseg.saliency import command
from sslseg.saliency.batch import analyse, analyse_images, map_images, read_rgb
from sslseg.saliency.hc import hc


def scene(h: int = 90, w: int = 120, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.clip(rng.normal(100, 8, (h, w, 3)), 0, 255).astype(np.uint8)
    img[h // 4 : 3 * h // 4, w // 3 : 2 * w // 3] = (220, 60, 30)
    return img


def test_analyse_segmentation_image_separates_object():
    img = scene()
    res = analyse(img)
    assert res.hc.shape == res.rc.shape == res.mask.shape == res.labels.shape == img.shape[:2]
    assert res.labels.max() + 1 == len(res.palette) == len(res.salient)
    # every label is wholly object or wholly background, and `salient` says which
    np.testing.assert_array_equal(res.salient[res.labels], res.mask)
    assert res.mask[30:60, 45:75].all() and not res.mask[:10].any()
    assert res.region_image().shape == img.shape and res.region_image().dtype == np.uint8
    up = analyse(img, scale=2)
    assert up.mask.shape == (180, 240)
    with pytest.raises(SslsegError, match="scale"):
        analyse(img, scale=3)


def test_map_images_keeps_order_over_processes():
    images = [scene(30, 40, seed=s) for s in range(5)]
    got = list(map_images(hc, images, workers=2, progress=False))
    for img, sal in zip(images, got, strict=True):
        np.testing.assert_array_equal(sal, hc(img))
    res = analyse_images([scene(seed=1), scene(seed=2)], workers=1, progress=False)
    assert len(res) == 2 and res[0].mask.any()


def _args(tmp_path, **kw) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    command.add_arguments(p)
    argv = [str(tmp_path / "in"), str(tmp_path / "out"), "--quiet"]
    for k, v in kw.items():
        argv += [f"--{k}", str(v)]
    return p.parse_args(argv)


def test_command_writes_maps_masks_regions(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "a.png"), scene(seed=3))
    cv2.imwrite(str(tmp_path / "in" / "grey.jpg"), scene(seed=4)[:, :, 0])
    cv2.imwrite(str(tmp_path / "in" / "flat.png"), np.full((20, 30, 3), 9, np.uint8))
    (tmp_path / "in" / "notes.txt").write_text("not an image, ignored by suffix")
    assert command.run(_args(tmp_path, scale=2, workers=2)) == 0
    assert "3 images" in capsys.readouterr().out
    for sub in ("maps", "hc", "masks", "regions"):
        a = cv2.imread(str(tmp_path / "out" / sub / "a.png"), cv2.IMREAD_UNCHANGED)
        assert a.shape[:2] == (180, 240)
    mask = cv2.imread(str(tmp_path / "out" / "masks" / "a.png"), cv2.IMREAD_UNCHANGED)
    assert set(np.unique(mask)) <= {0, 255}
    assert not cv2.imread(str(tmp_path / "out" / "maps" / "flat.png"), 0).any()


def test_command_bad_input_is_one_line_error(tmp_path):
    (tmp_path / "in").mkdir()
    with pytest.raises(SslsegError, match="no image files"):
        command.run(_args(tmp_path))
    (tmp_path / "in" / "broken.jpg").write_bytes(b"this is not a jpeg")
    with pytest.raises(SslsegError, match="broken.jpg: not a readable image") as exc:
        command.run(_args(tmp_path, workers=2))
    assert "\n" not in str(exc.value)
    (tmp_path / "in" / "broken.jpg").unlink()
    (tmp_path / "in").rmdir()
    with pytest.raises(SslsegError, match="not a folder"):
        command.run(_args(tmp_path))
    with pytest.raises(SslsegError, match="cannot read|not a readable"):
        read_rgb(tmp_path / "missing.png")


def test_command_in_the_one_style_and_its_older_forms(tmp_path, capsys):
    from sslseg.cli import main

    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "a.png"), scene(seed=5))
    src, out = tmp_path / "in", tmp_path / "out"
    assert main(["saliency", f"images={src}", f"out={out}", "workers=1", "progress=false"]) == 0
    assert "1 images" in capsys.readouterr().out and (out / "masks" / "a.png").is_file()
    # positional folders and flags are aliases of the same keys
    assert main(["saliency", str(src), str(tmp_path / "o2"), "--scale", "2", "--quiet"]) == 0
    mask = cv2.imread(str(tmp_path / "o2" / "masks" / "a.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (180, 240)
    capsys.readouterr()
    for argv, key in (
        ([str(src), "o", "x"], "x: at most two folders"),
        ([f"images={src}"], "config: images, out"),
        (["scale=3", f"images={src}", "out=o"], "config: scale"),
        (["cache=true"], "config: source"),
    ):
        assert main(["saliency", *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and key in err, err
    assert not (tmp_path / "o").exists()
