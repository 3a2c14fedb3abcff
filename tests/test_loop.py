"""The run skeleton (sslseg.loop) and the one resume rule (RunDir.check_same_config)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml
from tqdm import tqdm

from sslseg.errors import SslsegError
from sslseg.loop import run_epochs
from sslseg.runs import RunDir


class Counter:
    """A trainer whose state is a running sum: epoch e adds e + 1 per step."""

    desc = "toy"
    steps_per_epoch = 3

    def __init__(self) -> None:
        self.total = 0
        self.trained: list[int] = []

    def state_dict(self) -> dict[str, Any]:
        return {"total": self.total}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.total = state["total"]

    def train_one_epoch(self, epoch: int, bar: tqdm) -> dict[str, Any]:
        for _ in range(self.steps_per_epoch):
            self.total += epoch + 1
            bar.update()
        self.trained.append(epoch)
        return {"epoch": epoch + 1, "total": self.total}


class Killed(Exception):
    pass


def test_resumed_run_equals_uninterrupted(tmp_path):
    whole = Counter()
    run_epochs(whole, RunDir(tmp_path / "a").create(), 4, progress=False)

    def kill_after_two(done: int, record: dict[str, Any]) -> None:
        if done == 2:
            raise Killed

    first, run = Counter(), RunDir(tmp_path / "b").create()
    with pytest.raises(Killed):
        run_epochs(first, run, 4, progress=False, after_epoch=kill_after_two)
    second = Counter()
    history = run_epochs(second, run, 4, progress=False)
    assert second.trained == [2, 3]  # restored, not retrained
    assert [r["epoch"] for r in history] == [3, 4]
    assert second.total == whole.total == 3 * (1 + 2 + 3 + 4)
    assert run.read_log() == RunDir(tmp_path / "a").read_log()
    assert run.load("last.pt") == {"total": 30, "epoch": 4}


def test_a_checkpoint_that_does_not_fit_the_model_is_named_in_one_line(tmp_path):
    import torch

    class Net(Counter):
        def __init__(self, width: int) -> None:
            super().__init__()
            self.net = torch.nn.Linear(2, width)

        def state_dict(self) -> dict[str, Any]:
            return {"net": self.net.state_dict()}

        def load_state_dict(self, state: dict[str, Any]) -> None:
            self.net.load_state_dict(state["net"])

    run = RunDir(tmp_path / "a").create()
    run_epochs(Net(4), run, 1, progress=False)
    with pytest.raises(SslsegError, match=r"last\.pt: does not fit this model .*size mismatch"):
        run_epochs(Net(8), run, 2, progress=False)


def test_a_kill_between_log_and_checkpoint_leaves_no_duplicate_line(tmp_path):
    run = RunDir(tmp_path).create()
    real_save = run.save

    def save_fails_at_epoch_three(name: str, obj: Any) -> None:
        if obj["epoch"] == 3:
            raise Killed  # the line of epoch 3 is logged, its checkpoint never written
        real_save(name, obj)

    run.save = save_fails_at_epoch_three  # type: ignore[method-assign]
    with pytest.raises(Killed):
        run_epochs(Counter(), run, 4, progress=False)
    assert [r["epoch"] for r in run.read_log()] == [1, 2, 3]
    run.save = real_save  # type: ignore[method-assign]
    run_epochs(Counter(), run, 4, progress=False)
    assert [r["epoch"] for r in run.read_log()] == [1, 2, 3, 4]


def test_only_the_writer_writes(tmp_path):
    run = RunDir(tmp_path).create()
    run_epochs(Counter(), run, 2, progress=False, writer=False)
    assert run.read_log() == [] and run.load("last.pt") is None


@dataclass
class Toy:
    lr: float = 0.1
    device: str = "auto"
    progress: bool = True
    options: dict[str, Any] = field(default_factory=dict)
    added: int = 0


def test_one_resume_rule_names_the_key(tmp_path):
    run = RunDir(tmp_path).create()
    run.write_config(Toy(options={"a": 1}))
    run.check_same_config(Toy(options={"a": 1}, device="cpu", progress=False))  # may change
    with pytest.raises(SslsegError, match=r"another config \(lr: 0.1 there, 0.2 now\)"):
        run.check_same_config(Toy(lr=0.2, options={"a": 1}))
    with pytest.raises(SslsegError, match=r"another config \(options.a: 1 there, 2 now\)"):
        run.check_same_config(Toy(options={"a": 2}))
    # a key the saved run did not have yet holds its default there
    saved = run.read_yaml("config.yaml")
    del saved["added"]
    run.path("config.yaml").write_text(yaml.safe_dump(saved))
    run.check_same_config(Toy(options={"a": 1}))
    with pytest.raises(SslsegError, match=r"added: None there, 5 now"):
        run.check_same_config(Toy(options={"a": 1}, added=5))
