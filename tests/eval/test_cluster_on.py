"""``cluster_on: all`` / ``probes: false`` (clustering every image of a small labelled source),
and ``source_options`` (seg-folder's mask-code labels) in ``sslseg evaluate``."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sslseg.errors import SslsegError
from sslseg.eval import command


def _config(root, tmp_path, **keys):
    base = dict(
        encoders=["random"],
        source="image-folder",
        root=str(root),
        side=16,
        out=str(tmp_path / "out"),
        progress=False,
        tsne=False,
    )
    return command.EvaluateConfig(**{**base, **keys})


def test_cluster_on_all_clusters_every_image_in_store_order(image_folder, tmp_path):
    cfg = _config(image_folder, tmp_path, cluster_on="all", seed=3)
    data = command.load_data(cfg)
    assert len(data.test_idx) == 5  # the hold-out is still drawn (for the probes)
    # features = the row number: the clustered rows come back as the whole store, in order
    rows_f = lambda idx: idx[:, None].astype(np.float32)  # noqa: E731
    feats, labels = command.clustered(data, rows_f(data.train_idx), rows_f(data.test_idx), cfg)
    assert feats[:, 0].tolist() == list(range(24))
    assert labels.tolist() == data.train.labels.tolist()
    test = dataclasses.replace(cfg, cluster_on="test")
    feats, labels = command.clustered(data, rows_f(data.train_idx), rows_f(data.test_idx), test)
    assert feats[:, 0].tolist() == data.test_idx.tolist()


def test_clustering_only_evaluation_end_to_end(image_folder, tmp_path, capsys):
    args = argparse_args(
        "encoders=[random]",
        "source=image-folder",
        f"root={image_folder}",
        "side=16",
        f"out={tmp_path / 'out'}",
        "cluster_on=all",
        "probes=false",
        "progress=false",
    )
    assert command.run(args) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    row = results["encoders"]["random"]
    assert results["cluster_on"] == "all" and row["n_clustered"] == 24 and row["k"] == 3
    assert row["knn_acc"] is None and row["linear"] == [] and row["nmi"] is not None
    assert Image.open(tmp_path / "out" / "tsne_random.png").size[0] > 100
    assert not (tmp_path / "out" / "linear_fractions.png").exists()
    out = capsys.readouterr().out
    assert "random: nmi" in out and "k-means k=3 of 24 images (cluster_on: all)" in out


def argparse_args(*argv):
    import argparse

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_cluster_on_all_refuses_an_encoder_that_saw_the_rest(image_folder, tmp_path):
    from sslseg.backbones import build_resnet, save_encoder

    meta = {
        "arch": "resnet18",
        "stem": "cifar",
        "data": {"source": "image-folder", "root": str(image_folder)},
        "holdout": {"fraction": 0.2, "seed": 0},  # pretrained on the other 19 images
    }
    enc = str(save_encoder(build_resnet("resnet18", "cifar"), tmp_path / "e" / "encoder.pt", meta))
    cfg = _config(image_folder, tmp_path, encoders=[enc], probes=False)
    assert command.evaluate(cfg)["encoders"]["e"]["n_clustered"] == 5  # its hold-out: fine
    every = dataclasses.replace(cfg, cluster_on="all", out=str(tmp_path / "o2"))
    with pytest.raises(SslsegError, match=r"pretrained on 19 of the 24 images it clusters"):
        command.evaluate(every)
    ok = command.evaluate(dataclasses.replace(every, transductive=True, out=str(tmp_path / "o3")))
    assert ok["encoders"]["e"]["n_clustered"] == 24


def test_cluster_on_bad_values_are_one_line(tmp_path):
    with pytest.raises(SslsegError, match="config: cluster_on: 'train' is not one of test, all"):
        command.EvaluateConfig(cluster_on="train", out="x")
    # a source with its own train/test split has no single store to cluster
    cfg = command.EvaluateConfig(source="cifar10", root=str(tmp_path), cluster_on="all", out="x")
    with pytest.raises(SslsegError, match="config: cluster_on: 'all' clusters every image"):
        command.load_data(cfg)
    split = dataclasses.replace(cfg, cluster_on="test", source_options={"split": "test"})
    with pytest.raises(SslsegError, match="config: source_options.split: give train_split"):
        command.load_data(split)


def test_seg_folder_mask_codes_are_the_labels(tmp_path):
    root = tmp_path / "pv"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        code, colour = (211, (200, 60, 40)) if i % 2 else (213, (60, 60, 200))
        img = np.clip(np.array(colour) + rng.normal(0, 15, (16, 16, 3)), 0, 255)
        Image.fromarray(img.astype(np.uint8)).save(root / "images" / f"t{i}.bmp")
        mask = np.zeros((16, 16), np.uint8)
        mask[4:9, 4:9] = code if i else 0  # t0: all zero, dropped
        Image.fromarray(mask).save(root / "masks" / f"t{i}.bmp")
    options = {
        "foreground": "nonzero",
        "labels": "mask-code",
        "code_names": {211: "flat-concrete", 213: "brick"},
        "empty_masks": "drop",
    }
    cfg = _config(root, tmp_path, source="seg-folder", source_options=options)
    results = command.evaluate(dataclasses.replace(cfg, cluster_on="all", probes=False))
    assert results["class_names"] == ["flat-concrete", "brick"] and results["labelled"]
    row = results["encoders"]["random"]
    assert row["n_clustered"] == 11 and row["k"] == 2
    assert row["nmi"] == pytest.approx(1.0)  # two colours: even random features split them
    saved = (Path(cfg.out) / "config.yaml").read_text()
    assert "mask-code" in saved
