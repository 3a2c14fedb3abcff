import argparse
import csv
import json

import pytest
from PIL import Image

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
    cfg = command.load_config(command.EvaluateConfig, path, ["out=x"])
    assert set(yaml.safe_load(path.read_text())) == set(vars(cfg))
    assert cfg.knn_k == 200 and cfg.fractions[0] == 0.1 and len(cfg.fractions) == 10
