"""The Python API: the worked example of docs/api.md runs, and configs are checked as on the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import sslseg
from sslseg.api import as_config
from sslseg.errors import SslsegError
from sslseg.seg.finetune import FinetuneConfig

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def test_the_worked_example_of_the_docs_runs():
    (block,) = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    scope: dict = {}
    exec(compile(block, str(DOC), "exec"), scope)
    assert scope["encoder"].name == "encoder.pt" and scope["encoder"].is_file()
    assert 0 <= scope["scores"]["iou"] <= 1
    rows = scope["report"]["encoders"]
    assert len(rows) == 2 and all(0 <= row["knn_acc"] <= 1 for row in rows.values())


def test_configs_from_a_dict_a_yaml_file_or_a_dataclass_with_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 3\nside: 64\n")
    from_file = as_config(FinetuneConfig, path, side=32)
    assert (from_file.epochs, from_file.side) == (3, 32)
    assert as_config(FinetuneConfig, {"epochs": 3}, side=32) == as_config(
        FinetuneConfig, FinetuneConfig(epochs=3), side=32
    )
    typed = FinetuneConfig(epochs=4)
    assert as_config(FinetuneConfig, typed) is typed


@pytest.mark.parametrize(
    ("config", "overrides", "message"),
    [
        ({"nokey": 1}, {}, "config: nokey"),
        (None, {"epochs": "many"}, "config: epochs"),
        (None, {"epochs": 0}, "config: epochs"),
        (42, {}, "expected a FinetuneConfig"),
        ("missing.yaml", {}, "missing.yaml: config file not found"),
    ],
)
def test_bad_configs_are_one_line_errors(config, overrides, message, tmp_path):
    with pytest.raises(SslsegError, match=re.escape(message)) as err:
        sslseg.finetune(config, out=str(tmp_path / "never"), **overrides)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "never").exists()


def test_every_command_with_a_typed_config_has_its_function():
    from sslseg.cli import COMMANDS

    names = {"quickstart"}  # its own small entry point, not a typed-config stage
    for name in COMMANDS:
        if name in names:
            continue
        fn = name.replace("-", "_")
        assert hasattr(sslseg, fn) or hasattr(sslseg.api, fn), fn


def test_pix2pix_and_pseudo_label_take_configs_like_the_others(tmp_path):
    with pytest.raises(SslsegError, match="config: side: Pix2Pix needs a power-of-two side"):
        sslseg.pix2pix({"side": 48}, out=str(tmp_path / "never"))
    with pytest.raises(SslsegError, match="config: carry"):
        sslseg.pseudo_label(None, carry="nothing", out=str(tmp_path / "never"))
    assert not (tmp_path / "never").exists()
