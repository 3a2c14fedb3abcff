"""sslseg linear-curves (Fig. 11): pretraining per model and seed, one evaluation per seed,
paired accuracy differences over seeds, and reuse of what is unchanged."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from sslseg.config import load_config
from sslseg.errors import SslsegError
from sslseg.experiments.linear_curves import LinearCurveConfig, run_linear_curves


def _config(image_folder, tmp_path, *extra: str) -> LinearCurveConfig:
    root = str(image_folder)
    return load_config(
        LinearCurveConfig,
        None,
        [
            f"out={tmp_path / 'study'}",
            "progress=false",
            "seeds=[0, 1]",
            "models=[{name: random}, {name: ssl, label: SSL, pretrain_source: image-folder, "
            f"pretrain_root: '{root}', pretrain: {{policy: default, batch_size: 8}}}}]",
            "pretrain={method: simclr, side: 16, epochs: 1, warmup_epochs: 0, batch_size: 4}",
            f"evaluate={{source: image-folder, root: '{root}', side: 16, fractions: [0.5, 1.0],"
            " knn_k: 5, tsne: false, test_fraction: 0.25}",
            *extra,
        ],
    )


def _rows(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_the_study_pairs_seeds_and_reuses_what_is_unchanged(image_folder, tmp_path):
    config = _config(image_folder, tmp_path)
    report = run_linear_curves(config)
    study = tmp_path / "study"
    rows = _rows(study / "linear_curves.csv")
    # 2 models x 2 seeds x (kNN + 2 label fractions)
    assert len(rows) == 12 and {r["fraction"] for r in rows} == {"knn", "0.5", "1"}
    acc = {(r["model"], r["seed"], r["fraction"]): float(r["accuracy"]) for r in rows}
    paired = _rows(study / "linear_curves_paired.csv")
    assert [(p["model"], p["fraction"]) for p in paired] == [
        ("ssl", "knn"),
        ("ssl", "0.5"),
        ("ssl", "1"),
    ]
    for p in paired:
        per_seed = [acc["ssl", s, p["fraction"]] - acc["random", s, p["fraction"]] for s in "01"]
        assert float(p["delta_acc"]) == pytest.approx(np.mean(per_seed), abs=1e-4)
        assert p["basis"] == "seeds-t" and p["seeds"] == "2"
        assert float(p["family_level"]) == pytest.approx(1 - 0.05 / 3, abs=1e-4)
        # the Bonferroni interval holds the 95 % one
        assert float(p["family_low"]) <= float(p["low"]) <= float(p["high"])
        assert float(p["high"]) <= float(p["family_high"])
    # the model's own pretrain keys win over the shared ones
    saved = (study / "pretrain/ssl-seed1/config.yaml").read_text()
    assert "batch_size: 8" in saved and "seed: 1" in saved
    assert "| SSL |" in report.read_text() and "Bonferroni" in report.read_text()
    assert Image.open(study / "linear_curves.png").size[0] > 300

    # a rerun reuses every encoder and every evaluation
    encoder = study / "pretrain/ssl-seed0/encoder.pt"
    results = study / "evaluate/seed0/results.json"
    stamps = (encoder.stat().st_mtime_ns, results.stat().st_mtime_ns)
    run_linear_curves(config)
    assert (encoder.stat().st_mtime_ns, results.stat().st_mtime_ns) == stamps
    # another evaluation key scores again from the same encoders
    run_linear_curves(_config(image_folder, tmp_path, "evaluate.fractions=[1.0]"))
    assert encoder.stat().st_mtime_ns == stamps[0]
    assert results.stat().st_mtime_ns != stamps[1]
    assert {r["fraction"] for r in _rows(study / "linear_curves.csv")} == {"knn", "1"}
    # a changed encoder file behind the same path is scored again
    scored = results.stat().st_mtime_ns
    shutil.copyfile(study / "pretrain/ssl-seed1/encoder.pt", encoder)
    run_linear_curves(_config(image_folder, tmp_path, "evaluate.fractions=[1.0]"))
    assert results.stat().st_mtime_ns != scored


def test_a_finished_evaluation_is_known_by_its_encoders_content(
    image_folder, tmp_path, monkeypatch
):

    import sslseg.eval.command
    from sslseg.experiments.linear_curves import evaluate_seed, evaluation_config, made_by
    from sslseg.runs import RunDir

    config = _config(image_folder, tmp_path)
    # one file name in three folders: torch.save writes the name into the file
    first, moved, other = (tmp_path / n / "encoder.pt" for n in ("first", "moved", "other"))
    for path, value in ((first, 0.0), (moved, 0.0), (other, 1.0)):
        path.parent.mkdir()
        torch.save({"w": torch.full((2,), value)}, path)
    done = evaluation_config(config, 0, ["random", str(first)])
    run = RunDir(done.out).create()
    run.write_json("made_by.json", made_by(done))
    run.write_json("results.json", {"encoders": {}})
    scored = []
    monkeypatch.setattr(sslseg.eval.command, "evaluate", lambda cfg: scored.append(cfg) or {})
    # the same bytes at another path: reused, not scored again
    assert evaluate_seed(config, 0, ["random", str(moved)]) == {"encoders": {}}
    assert scored == []
    # other bytes: scored again
    evaluate_seed(config, 0, ["random", str(other)])
    assert len(scored) == 1


def test_bad_study_configs_are_one_line_errors(image_folder, tmp_path):
    with pytest.raises(SslsegError, match="models"):
        _config(image_folder, tmp_path, "models=[{name: a}, {name: a}]")
    with pytest.raises(SslsegError, match="seeds"):
        _config(image_folder, tmp_path, "seeds=[]")
    with pytest.raises(SslsegError, match="evaluate.probes: must be true"):
        _config(image_folder, tmp_path, "evaluate.probes=false")
    with pytest.raises(SslsegError, match="evaluate.knn_kk|knn_kk"):
        _config(image_folder, tmp_path, "evaluate.knn_kk=3")


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("pretrain.epoch=3", "epoch"),
        pytest.param(
            "evaluate.device=cuda", "'cuda' asked for but CUDA is not", marks=pytest.mark.no_gpu
        ),
    ],
)
def test_a_bad_study_key_is_one_line_and_writes_nothing(image_folder, tmp_path, key, message):
    config = _config(image_folder, tmp_path, key)
    with pytest.raises(SslsegError, match=message) as err:
        run_linear_curves(config)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "study").exists()


def test_the_shipped_fig11_config_resolves_every_pretraining():
    from pathlib import Path

    from sslseg.augment.policies import parse_policy
    from sslseg.experiments.grid import pretrain_config

    path = Path(__file__).resolve().parents[2] / "configs/linear-curves/cifar10-fig11.yaml"
    config = load_config(LinearCurveConfig, path)
    assert [m.name for m in config.models][0] == "random" and config.seeds == [0, 1, 2]
    policies = [pretrain_config(config, m, 0).policy for m in config.models if m.pretrain_source]
    assert [parse_policy(p).name for p in policies] == ["default", "saliency+default", "saliency"]
    cfg = pretrain_config(config, config.models[1], 2)
    assert (cfg.source, cfg.source_options, cfg.epochs, cfg.seed) == (
        "cifar10",
        {"split": "train"},
        15,
        2,
    )
