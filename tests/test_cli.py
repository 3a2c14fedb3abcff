"""One command style: ``sslseg NAME [CONFIG.yaml] [key=value ...]`` through one loader."""

import dataclasses
import re

import pytest

from sslseg.cli import build_parser, main
from sslseg.config import config_from_args, keys_help, load_config, split_config_args
from sslseg.errors import SslsegError
from sslseg.eval.command import EvaluateConfig
from sslseg.experiments.command import quickstart_config
from sslseg.experiments.grid import ExperimentConfig
from sslseg.experiments.label_curves import LabelCurveConfig
from sslseg.experiments.pseudo_labels import PseudoLabelConfig
from sslseg.saliency.command import SaliencyConfig
from sslseg.seg.finetune import FinetuneConfig
from sslseg.ssl.command import PretrainConfig

#: every command on the shared loader, with its config dataclass
CONFIGS = {
    "pretrain": PretrainConfig,
    "finetune": FinetuneConfig,
    "evaluate": EvaluateConfig,
    "label-curves": LabelCurveConfig,
    "experiment": ExperimentConfig,
    "quickstart": ExperimentConfig,
    "saliency": SaliencyConfig,
    "pseudo-label": PseudoLabelConfig,
}


def _keys(cls, prefix=""):
    """Every key of a config dataclass, nested dataclass fields dotted."""
    out = []
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(default):
            out += _keys(type(default), f"{prefix}{f.name}.")
        else:
            out.append((f"{prefix}{f.name}", str(f.type)))
    return out


def _parse(name, *argv):
    args, extra = build_parser(name).parse_known_args([name, *argv])
    assert extra == []
    return args


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_help_lists_every_key_with_its_type_and_default(name, capsys):
    with pytest.raises(SystemExit) as stop:
        main([name, "--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert "CONFIG.yaml|key=value" in text and "--quiet" in text and "progress=false" in text
    lines = text.splitlines()
    for key, type_name in _keys(CONFIGS[name]):
        # "  key  type  default"
        row = [line for line in lines if re.match(rf"  {re.escape(key)}\s", line)]
        assert len(row) == 1, key
        assert f"  {type_name}  " in row[0], (key, row[0])
    defaults = {"pretrain": "epochs            int             20"}
    if name in defaults:
        assert defaults[name] in text


def test_help_of_quickstart_shows_its_own_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["quickstart", "--help"])
    text = capsys.readouterr().out
    assert re.search(r"  out\s+str\s+runs/quickstart", text)
    assert re.search(r"  finetune\.source\s+str\s+sample", text)
    assert re.search(r"  models\[\]\.pretrain_source\s+str", text)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_a_bad_key_is_the_same_one_line_error_everywhere(name, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may be written, not even a run folder
    assert main([name, "nokey=1", "progress=false"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sslseg: error: config: nokey: ")
    assert list(tmp_path.iterdir()) == []
    assert main([name, "progress=perhaps"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sslseg: error: config: progress: ")


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_command_reads_config_file_keys_and_quiet(name, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("out: from-yaml\n")
    cfg = config_from_args(_parse(name, str(path), "--quiet"))
    assert isinstance(cfg, CONFIGS[name])
    assert cfg.out == "from-yaml" and cfg.progress is False
    # key=value wins over the file, and may come after flags
    args = _parse(name, "--quiet", str(path))
    args.config_args.append("out=later")
    assert config_from_args(args).out == "later"
    assert config_from_args(_parse(name, "progress=false")).progress is False


def test_key_value_after_flags_reaches_the_config(monkeypatch):
    seen = {}

    def fake_run(args):
        seen["cfg"] = config_from_args(args)
        return 0

    import sslseg.eval.command as evaluate_command

    monkeypatch.setattr(evaluate_command, "run", fake_run)
    assert main(["evaluate", "knn_k=3", "--out", "o", "seed=4", "--no-tsne", "side=16"]) == 0
    cfg = seen["cfg"]
    assert (cfg.knn_k, cfg.out, cfg.seed, cfg.tsne, cfg.side) == (3, "o", 4, False, 16)


def test_an_unknown_flag_is_refused(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["finetune", "--bogus"])
    assert stop.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_quickstart_is_the_experiment_with_other_defaults():
    cfg = config_from_args(_parse("quickstart", "seeds=[0]", "--out", "runs/q"))
    assert cfg == dataclasses.replace(quickstart_config("runs/q"), seeds=[0])
    assert config_from_args(_parse("quickstart")) == quickstart_config()


def test_split_config_args():
    assert split_config_args(["a.yaml", "x=1", "y=[1,2]"]) == ("a.yaml", ["x=1", "y=[1,2]"])
    assert split_config_args(["x=1"]) == (None, ["x=1"])
    with pytest.raises(SslsegError, match="only one config file"):
        split_config_args(["a.yaml", "b.yaml"])


def test_a_config_file_whose_name_holds_an_equals_sign(tmp_path):
    path = tmp_path / "lr=0.1.yaml"
    path.write_text("lr: 0.1\n")
    assert split_config_args([str(path), "seed=2"]) == (str(path), ["seed=2"])
    assert load_config(PretrainConfig, str(path)).lr == 0.1


def test_values_are_checked_like_key_value():
    cfg = load_config(PretrainConfig, None, ["lr=0.1"], {"lr": "0.2", "root": "a b,c:d"})
    assert (cfg.lr, cfg.root) == (0.2, "a b,c:d")
    with pytest.raises(SslsegError, match="config: nokey"):
        load_config(PretrainConfig, values={"nokey": 1})
    with pytest.raises(SslsegError, match="config: epochs: must be at least 1"):
        load_config(PretrainConfig, values={"epochs": 0})


def test_keys_help_of_a_nested_config():
    text = keys_help(LabelCurveConfig)
    assert re.search(r"  fractions\s+list\[float\]\s+\[0\.1, 0\.2", text)
    assert re.search(r"  finetune\.side\s+int\s+128", text)


def test_a_value_outside_its_choices_is_one_line_naming_key_and_choices():
    from sslseg.config import require_choice

    require_choice("sgd", ("adam", "sgd"), "optimizer")  # a choice passes
    with pytest.raises(SslsegError, match=r"^config: optimizer: 'lamb' is not one of adam, sgd$"):
        require_choice("lamb", ("adam", "sgd"), "optimizer")
    with pytest.raises(SslsegError, match="config: scale: '3' is not one of 1, 2"):
        require_choice(3, iter((1, 2)), "scale")  # any iterable, values shown as text
