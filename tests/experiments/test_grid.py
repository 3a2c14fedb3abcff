import dataclasses
import json

import pytest
import torch
import yaml

import sslseg.experiments.grid as grid
from sslseg.config import config_to_dict, load_config
from sslseg.errors import SslsegError
from sslseg.experiments.grid import ExperimentConfig, expand
from sslseg.experiments.run import run_experiment


def test_default_grid_is_table41():
    cells = expand(ExperimentConfig())
    assert len(cells) == 3 * 3 * 3
    assert {c.model.name for c in cells} == {"baseline", "simclr-cifar10", "simclr-cats-vs-dogs"}
    assert len({c.name for c in cells}) == len(cells)
    assert [c.seed for c in cells[:9]] == [0] * 9  # seed-major


def test_bad_grid_values_are_named():
    with pytest.raises(SslsegError, match="dev_fractions"):
        load_config(ExperimentConfig, None, ["dev_fractions=[0.9]"])
    with pytest.raises(SslsegError, match="seeds"):
        load_config(ExperimentConfig, None, ["seeds=[]"])
    with pytest.raises(SslsegError, match="modles"):
        load_config(ExperimentConfig, None, ["modles=[]"])


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("pretrain.epoch=3", "epoch"),
        pytest.param(
            "finetune.device=cuda", "'cuda' asked for but CUDA is not", marks=pytest.mark.no_gpu
        ),
    ],
)
def test_a_bad_study_key_is_one_line_and_writes_nothing(tmp_path, key, message):
    # the baseline cells would fine-tune first; the SSL model's bad key must stop the grid before
    config = load_config(
        ExperimentConfig, None, [f"out={tmp_path / 'exp'}", "seeds=[0]", "dev_fractions=[0.2]", key]
    )
    with pytest.raises(SslsegError, match=message) as err:
        run_experiment(config)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "exp").exists()


def test_grid_runs_then_resumes_without_redoing_cells(tmp_path, monkeypatch):
    overrides = [
        f"out={tmp_path / 'exp'}",
        "models=[{name: baseline}, {name: other, encoder: random}]",
        "dev_fractions=[0.8, 0.4]",
        "seeds=[0]",
        "finetune.side=32",
        "finetune.epochs=1",
        "finetune.figures=2",
        "n_boot=50",
        "progress=false",
    ]
    config = load_config(ExperimentConfig, None, overrides)
    report = run_experiment(config)
    text = report.read_text()
    assert "| 0 | baseline | BCE | 80 | 1 |" in text
    assert "other" in text and "95%" in text
    for name in ("results.csv", "iou_vs_dev_fraction.png", "figure41_dev0.8.png"):
        assert (tmp_path / "exp" / name).is_file(), name

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished cell was run again")

    monkeypatch.setattr(grid, "finetune", must_not_run)
    assert run_experiment(config).read_text() == text


def test_train_subsets_are_nested():
    import numpy as np

    from sslseg.data.splits import make_split, train_subset

    split = make_split([f"i{k}" for k in range(100)], 0.8, seed=4)
    small, large = train_subset(split, 0.2, 4), train_subset(split, 0.6, 4)
    assert set(small.train) < set(large.train) <= set(split.train)
    assert np.array_equal(small.test, split.test) and np.array_equal(small.val, split.val)


def test_pretraining_is_asked_once_with_only_the_keys_that_are_set(tmp_path, monkeypatch):
    from sslseg.experiments.grid import ModelSpec, ensure_encoder
    from sslseg.ssl import command as pretrain_command

    calls = []

    def fake_pretrain(cfg, export_only=False):
        calls.append(cfg)
        folder = cfg.run_folder()
        if not (folder / "encoder.pt").is_file():
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "encoder.pt").write_bytes(b"x")
            (folder / "config.yaml").write_text(yaml.safe_dump(config_to_dict(cfg)))
            (folder / "results.json").write_text("{}")  # finished, as a real run leaves it
        return folder / "encoder.pt"

    monkeypatch.setattr(pretrain_command, "pretrain_encoder", fake_pretrain)
    monkeypatch.chdir(tmp_path)
    quiet = ["out=exp", "progress=false"]
    config = load_config(ExperimentConfig, None, [*quiet, "pretrain={epochs: 2}"])
    model = ModelSpec("ssl-sample", pretrain_source="sample")
    first = ensure_encoder(config, model, 3)
    assert ensure_encoder(config, model, 3) == first  # reused, not redone
    assert len(calls) == 1
    cfg = calls[0]
    assert (cfg.epochs, cfg.source, cfg.seed, cfg.root) == (2, "sample", 3, "")
    assert cfg.holdout() == {"fraction": 0.2, "seed": 3}  # the fine-tuning test set of seed 3
    # a folder made before a key existed (pix2pix, here) is reused while the key is default
    saved_path = tmp_path / "exp/pretrain/ssl-sample-seed3/config.yaml"
    saved = yaml.safe_load(saved_path.read_text())
    del saved["pix2pix"]
    saved_path.write_text(yaml.safe_dump(saved))
    assert ensure_encoder(config, model, 3) == first and len(calls) == 1
    # a changed pretraining key removes the stale encoder and pretrains again
    assert (tmp_path / first).read_bytes() == b"x"
    changed = load_config(ExperimentConfig, None, [*quiet, "pretrain={epochs: 3}"])
    ensure_encoder(changed, model, 3)
    assert calls[-1].epochs == 3
    assert (
        yaml.safe_load((tmp_path / "exp/pretrain/ssl-sample-seed3/config.yaml").read_text())[
            "epochs"
        ]
        == 3
    )


def test_a_changed_config_recomputes_exactly_the_cells_it_changes(tmp_path, monkeypatch):
    base = [
        f"out={tmp_path / 'exp'}",
        "models=[{name: baseline}]",
        "dev_fractions=[0.8, 0.4]",
        "seeds=[0]",
        "finetune.side=32",
        "finetune.epochs=1",
        "finetune.figures=2",
        "n_boot=50",
        "progress=false",
    ]
    run_experiment(load_config(ExperimentConfig, None, base))
    trained = []
    real = grid.finetune

    def counting(cfg, progress=None):
        trained.append(cfg.dev_fraction)
        assert cfg.progress is False and progress is None  # the typed config says it all
        return real(cfg, progress)

    monkeypatch.setattr(grid, "finetune", counting)
    # keys that change no result: nothing is retrained
    quiet = [*base, "n_boot=60", "finetune.figures=3", "figure_fraction=0.4"]
    run_experiment(load_config(ExperimentConfig, None, quiet))
    assert trained == []
    # a fine-tuning key: every cell is retrained, and the report shows the new results
    longer = [*base, "finetune.epochs=2"]
    run_experiment(load_config(ExperimentConfig, None, longer))
    assert sorted(trained) == [0.4, 0.8]
    for fraction in ("0.8", "0.4"):
        made = json.loads(
            (tmp_path / f"exp/cells/baseline-dev{fraction}-seed0/made_by.json").read_text()
        )
        assert made["config"]["epochs"] == 2
        log = (tmp_path / f"exp/cells/baseline-dev{fraction}-seed0/log.jsonl").read_text()
        assert log.count('"epoch"') >= 2
    # the same config again: nothing
    trained.clear()
    run_experiment(load_config(ExperimentConfig, None, longer))
    assert trained == []


def test_pretraining_config_takes_the_keys_as_values_not_strings(tmp_path):
    # values with commas, colons and nested mappings reach PretrainConfig as they are
    from sslseg.experiments.grid import ModelSpec, pretrain_config

    config = load_config(
        ExperimentConfig,
        None,
        [
            f"out={tmp_path}",
            "progress=false",
            "pretrain={method: moco, method_options: {queue_size: 64}}",
        ],
    )
    model = ModelSpec("m", pretrain_source="image-folder", pretrain_root="data/a b,c:d")
    cfg = pretrain_config(config, model, 2)
    assert (cfg.method, cfg.method_options, cfg.root) == (
        "moco",
        {"queue_size": 64},
        "data/a b,c:d",
    )
    assert (cfg.seed, cfg.progress, cfg.source) == (2, False, "image-folder")
    assert cfg.out == str(tmp_path / "pretrain" / "m-seed2")
    with pytest.raises(SslsegError, match="config: epochz"):
        pretrain_config(load_config(ExperimentConfig, None, ["pretrain={epochz: 1}"]), model, 0)


def test_cells_made_before_source_options_existed_are_reused(tmp_path):
    from sslseg.experiments.grid import Cell, ModelSpec, cell_config, made_by, stale_key
    from sslseg.runs import RunDir

    config = load_config(ExperimentConfig, None, [f"out={tmp_path}"])
    cell_cfg = cell_config(config, Cell(ModelSpec(), 0.8, 0), "random")
    made = made_by(cell_cfg)
    run = RunDir(tmp_path / "cell").create()
    old = {k: v for k, v in made["config"].items() if k not in ("source_options", "init")}
    run.write_json("made_by.json", {**made, "config": old})
    assert stale_key(run, made) == ""
    other = made_by(dataclasses.replace(cell_cfg, source_options={"split": "trainval"}))
    assert stale_key(run, other) == "source_options.split"


def test_a_cell_whose_init_checkpoint_changed_is_stale(tmp_path):
    from sslseg.experiments.grid import Cell, ModelSpec, cell_config, made_by, stale_key
    from sslseg.runs import RunDir

    config = load_config(ExperimentConfig, None, [f"out={tmp_path}"])
    start = RunDir(tmp_path / "start").create()
    start.save("best.pt", {"model": {"w": torch.zeros(2)}, "epoch": 0})
    cell_cfg = dataclasses.replace(
        cell_config(config, Cell(ModelSpec(), 0.8, 0), "random"), init=str(start.root)
    )
    made = made_by(cell_cfg)
    assert made["init_hash"] != str(start.root)  # the hash of the folder's best.pt
    run = RunDir(tmp_path / "cell").create()
    run.write_json("made_by.json", made)
    assert stale_key(run, made_by(cell_cfg)) == ""
    start.save("best.pt", {"model": {"w": torch.ones(2)}, "epoch": 0})  # rerun behind one path
    assert stale_key(run, made_by(cell_cfg)) == "init (its checkpoint changed)"
    other = dataclasses.replace(cell_cfg, init=str(tmp_path / "elsewhere.pt"))
    assert stale_key(run, made_by(other)) == "init"


def test_a_cell_is_known_by_its_encoder_content_not_its_path(tmp_path):
    from sslseg.experiments.grid import Cell, ModelSpec, cell_config, made_by, stale_key
    from sslseg.runs import RunDir

    config = load_config(ExperimentConfig, None, [f"out={tmp_path}"])
    first, moved = tmp_path / "a" / "encoder.pt", tmp_path / "b" / "encoder.pt"
    for path in (first, moved):
        path.parent.mkdir()
        torch.save({"w": torch.zeros(2)}, path)
    cell_cfg = cell_config(config, Cell(ModelSpec(), 0.8, 0), str(first))
    run = RunDir(tmp_path / "cell").create()
    run.write_json("made_by.json", made_by(cell_cfg))
    # a killed cell resumes only under the same paths (its command checks them): retrained
    assert stale_key(run, made_by(dataclasses.replace(cell_cfg, encoder=str(moved)))) == "encoder"
    run.write_json("results.json", {"iou": 0.5})
    # a finished one: the same bytes under another path (the grid rerun with out= spelled
    # otherwise) is the same start
    assert stale_key(run, made_by(dataclasses.replace(cell_cfg, encoder=str(moved)))) == ""
    torch.save({"w": torch.ones(2)}, moved)
    assert stale_key(run, made_by(dataclasses.replace(cell_cfg, encoder=str(moved)))) == (
        "encoder (its file changed)"
    )
    # a named start (no file) against a file: the key itself differs
    assert stale_key(run, made_by(dataclasses.replace(cell_cfg, encoder="random"))) == "encoder"
