import argparse
import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sslseg.config import load_config
from sslseg.errors import SslsegError
from sslseg.eval import command


def parse(*argv):
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_evaluate_two_encoders_end_to_end(image_folder, tmp_path, capsys):
    out = tmp_path / "out"
    args = parse(
        "--encoder",
        "random",
        "--encoder",
        "random",
        "--source",
        "image-folder",
        "--root",
        str(image_folder),
        "--side",
        "16",
        "--out",
        str(out),
        "fractions=[0.5,1.0]",
        "knn_k=5",
        "progress=false",
        "seed=1",
    )
    assert command.run(args) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["n_train"] + results["n_test"] == 24 and results["labelled"]
    assert list(results["encoders"]) == ["random", "random-2"]
    row = results["encoders"]["random"]
    assert 0 <= row["knn_acc"] <= 1 and set(row["linear_acc"]) == {"0.5", "1.0"}
    assert row["nmi"] is not None and row["ari"] is not None and row["silhouette"] is not None
    assert {"features_train", "knn", "linear", "kmeans", "tsne"} <= set(row["seconds"])
    # Colour classes are trivially separable, even for random features.
    assert row["linear_acc"]["1.0"] == 1.0
    for name in ("linear_fractions.png", "tsne_random.png", "tsne_random-2.png"):
        assert Image.open(out / name).size[0] > 100
    with open(out / "linear_fractions.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 and {r["encoder"] for r in rows} == {"random", "random-2"}
    assert (out / "config.yaml").is_file() and (out / "log.jsonl").read_text().count("\n") > 5
    assert "random: kNN" in capsys.readouterr().out
    # The second run reads both encoders' features from the cache.
    command.run(args)
    again = json.loads((out / "results.json").read_text())
    assert again["encoders"]["random"]["features_cached"]
    assert again["encoders"]["random"]["linear_acc"] == row["linear_acc"]


def test_bad_inputs_are_sslseg_errors(image_folder, tmp_path):
    with pytest.raises(SslsegError, match="encoder file not found"):
        command.run(
            parse(
                "--encoder",
                str(tmp_path / "missing.pt"),
                "--source",
                "image-folder",
                "--root",
                str(image_folder),
                "--out",
                str(tmp_path / "o"),
            )
        )
    assert not (tmp_path / "o").exists()
    with pytest.raises(SslsegError, match="config: knn_k"):
        command.run(parse("--out", str(tmp_path / "o"), "knn_k=0"))
    with pytest.raises(SslsegError, match="config: out"):
        command.run(parse("--root", str(image_folder), "--source", "image-folder"))
    with pytest.raises(SslsegError, match="nope"):
        command.run(parse("--out", str(tmp_path / "o"), "nope=1"))


def test_shipped_config_lists_every_key():
    from pathlib import Path

    import yaml

    path = Path(__file__).resolve().parents[2] / "configs" / "evaluate.yaml"
    cfg = load_config(command.EvaluateConfig, path, ["out=x"])
    assert set(yaml.safe_load(path.read_text())) == set(vars(cfg))
    assert cfg.knn_k == 200 and cfg.fractions[0] == 0.1 and len(cfg.fractions) == 10


def _exported(tmp_path, name, stem, data):
    from sslseg.backbones import build_resnet, save_encoder

    return str(
        save_encoder(
            build_resnet("resnet18", stem),
            tmp_path / name / "encoder.pt",
            {"arch": "resnet18", "stem": stem, "method": "simclr", "data": data},
        )
    )


def _config(image_folder, tmp_path, encoders, **keys):
    return command.EvaluateConfig(
        encoders=encoders,
        source="image-folder",
        root=str(image_folder),
        side=16,
        out=str(tmp_path / "out"),
        progress=False,
        tsne=False,
        **keys,
    )


def test_random_takes_the_stem_of_the_encoders_it_is_compared_with(image_folder, tmp_path):
    # at 16 px the old rule gave `random` the CIFAR stem beside an ImageNet-stem encoder
    enc = _exported(tmp_path, "ssl", "imagenet", {"source": "cifar10"})
    cfg = _config(image_folder, tmp_path, ["random", enc])
    encoders = command.resolve_encoders(cfg, 16)
    assert [e.meta["stem"] for e in encoders] == ["imagenet", "imagenet"]
    assert encoders[0].model.conv1.kernel_size == (7, 7)
    # without exported encoders, auto keeps the small-input rule
    alone = command.resolve_encoders(_config(image_folder, tmp_path, ["random"]), 16)
    assert alone[0].meta["stem"] == "cifar"


def test_mixed_stems_are_refused_unless_asked_for(image_folder, tmp_path):
    enc = _exported(tmp_path, "ssl", "imagenet", {"source": "cifar10"})
    cfg = _config(image_folder, tmp_path, ["random", enc], stem="cifar")
    with pytest.raises(SslsegError, match="config: stem: the encoders have different stems"):
        command.evaluate(cfg)
    assert not (tmp_path / "out").exists()
    mixed = command.resolve_encoders(dataclasses.replace(cfg, mixed_stems=True), 16)
    assert {e.meta["stem"] for e in mixed} == {"cifar", "imagenet"}


def test_an_encoder_pretrained_on_the_test_images_is_refused(image_folder, tmp_path):
    data = {"source": "image-folder", "root": str(image_folder)}
    seen = _exported(tmp_path, "seen", "imagenet", data)  # no holdout: saw every image
    with pytest.raises(SslsegError, match="was pretrained on 5 of the 5 test images"):
        command.evaluate(_config(image_folder, tmp_path, [seen], fractions=[1.0], knn_k=3))
    ok = command.evaluate(
        _config(image_folder, tmp_path, [seen], fractions=[1.0], knn_k=3, transductive=True)
    )
    assert ok["n_test"] == 5
    # an encoder whose hold-out is the probes' test set passes; another hold-out does not
    held = _exported(tmp_path, "held", "imagenet", data)
    sidecar = Path(held).with_suffix(".json")
    meta = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**meta, "holdout": {"fraction": 0.2, "seed": 0}}))
    cfg = _config(image_folder, tmp_path / "o2", [held], fractions=[1.0], knn_k=3)
    assert command.evaluate(cfg)["n_test"] == 5
    with pytest.raises(SslsegError, match="was pretrained on"):
        command.evaluate(dataclasses.replace(cfg, seed=1, out=str(tmp_path / "o3")))


def test_probes_alone_on_separable_features(blobs):
    train_f, train_y = blobs(20, 3, seed=0)
    test_f, test_y = blobs(10, 3, seed=0)
    cfg = command.EvaluateConfig(fractions=[0.5, 1.0], knn_k=5, out="unused")
    timer = command.StepTimer()
    scores = command.probe_scores(train_f, train_y, test_f, test_y, cfg, timer=timer)
    assert scores["knn_acc"] == 1.0
    assert set(scores["linear_acc"]) == {"0.5", "1.0"} and scores["linear_acc"]["1.0"] == 1.0
    assert [r["fraction"] for r in scores["linear"]] == [0.5, 1.0]
    assert set(timer.seconds) == {"knn", "linear"}


def test_clustering_alone_finds_the_blobs(blobs, tmp_path):
    feats, labels = blobs(15, 3, seed=1)
    cfg = command.EvaluateConfig(out="unused", tsne_points=30)
    clusters, scores = command.cluster_scores(feats, labels, 3, cfg)
    assert scores["k"] == 3 and len(np.unique(clusters)) == 3
    assert scores["nmi"] == pytest.approx(1.0) and scores["ari"] == pytest.approx(1.0)
    unlabelled = command.cluster_scores(feats, None, 3, cfg)[1]
    assert unlabelled["nmi"] is None and unlabelled["silhouette"] is not None
    png = command.tsne_figure(
        feats, clusters, labels, scores, tmp_path / "t.png", "blobs", ["a", "b", "c"], cfg
    )
    assert png == tmp_path / "t.png" and Image.open(png).size[0] > 100
    off = dataclasses.replace(cfg, tsne=False)
    assert (
        command.tsne_figure(feats, clusters, labels, scores, tmp_path / "n.png", "", [], off)
        is None
    )


def test_report_alone_writes_the_csvs_and_the_figure(tmp_path):
    from sslseg.runs import RunDir

    def row(acc):
        linear = [
            {"fraction": f, "n_labels": n, "accuracy": acc, "converged": True}
            for f, n in ((0.5, 5), (1.0, 10))
        ]
        return {
            "spec": "random",
            "knn_acc": acc,
            "linear": linear,
            "linear_acc": {"0.5": acc, "1.0": acc},
            "nmi": 0.5,
            "ari": 0.25,
            "silhouette": 0.1,
            "seconds": {"knn": 0.01234},
        }

    results = {"n_train": 10, "n_test": 5, "encoders": {"a": row(0.5), "b": row(0.75)}}
    plots = command.write_report(results, RunDir(tmp_path).create(), "image-folder")
    assert set(plots) == {"linear_fractions", "linear_fractions_csv", "summary_csv"}
    with open(tmp_path / "summary.csv") as fh:
        summary = list(csv.DictReader(fh))
    assert [r["encoder"] for r in summary] == ["a", "b"]
    assert summary[1]["linear_1.0"] == "0.75" and summary[0]["seconds_knn"] == "0.012"
    with open(tmp_path / "linear_fractions.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 4
    assert Image.open(tmp_path / "linear_fractions.png").size[0] > 100
    assert command.summary_line("a", row(0.5)) == (
        "a: kNN 50.0% linear 0.5:50.0% 1.0:50.0% nmi 0.500 ari 0.250 silhouette 0.100"
    )
    # without labels: no curves, only the summary
    bare = {**row(0.5), "knn_acc": None, "linear": [], "linear_acc": None, "nmi": None}
    plots = command.write_report(
        {**results, "encoders": {"a": bare}}, RunDir(tmp_path / "u").create(), "x"
    )
    assert set(plots) == {"summary_csv"}


def test_flags_are_aliases_of_keys_and_win_over_them(tmp_path):
    from_keys = command.config_from_args(
        parse("encoders=[random,imagenet]", "side=16", "out=o", "tsne=false", "progress=false")
    )
    from_flags = command.config_from_args(
        parse(
            "--encoder",
            "random",
            "--encoder",
            "imagenet",
            "--side",
            "16",
            "--out",
            "o",
            "--no-tsne",
            "--quiet",
        )
    )
    assert from_keys == from_flags
    assert from_flags.encoders == ["random", "imagenet"] and from_flags.tsne is False
    # YAML, then key=value, then flags
    path = tmp_path / "e.yaml"
    path.write_text("side: 24\nknn_k: 7\nout: a\n")
    cfg = command.config_from_args(parse(str(path), "side=40", "out=b", "--out", "c"))
    assert (cfg.side, cfg.knn_k, cfg.out) == (40, 7, "c")
    assert command.config_from_args(parse("--config", str(path))).knn_k == 7
    with pytest.raises(SslsegError, match="config: side: Value 'many'"):
        command.config_from_args(parse("--side", "many"))
