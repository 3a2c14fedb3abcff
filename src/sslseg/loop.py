"""One run skeleton for every training command: restore, one epoch, record, save.

As DINO's ``main_dino.py`` keeps the setup of a run apart from ``train_one_epoch``, each
command (``ssl/train.py``, ``seg/finetune.py``, ``det/train.py``) builds its objects into an
:class:`EpochTrainer` and hands it to :func:`run_epochs`, which owns what the three share:
resuming from the last checkpoint, the progress bar, one JSON line per epoch, the checkpoint
after it, and the order of those two. Which config keys may change when a run resumes is one
rule too: :data:`sslseg.config.RESUMABLE_KEYS`, applied by ``RunDir.check_same_config``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from sslseg.board import Board
from sslseg.errors import SslsegError
from sslseg.runs import RunDir


class EpochTrainer(Protocol):
    """What a command's training state offers the skeleton.

    ``state_dict`` is everything a resumed run needs (weights, optimiser, scheduler, RNG,
    best-so-far); the skeleton adds ``epoch`` (epochs done) when it saves it.
    ``train_one_epoch(epoch, bar)`` trains epoch ``epoch`` (0-based), moves ``bar`` one step
    per batch and returns the epoch's log record (with ``"epoch": epoch + 1``).
    """

    desc: str
    steps_per_epoch: int

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def train_one_epoch(self, epoch: int, bar: tqdm) -> dict[str, Any]: ...


def epoch_batches(indices: np.ndarray, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """A seeded shuffle of ``indices`` cut into batches (the last may be smaller).

    A last batch of one image joins the one before: batch norm cannot train on a single
    image at a U-Net's 1 x 1 bottleneck (torch raises), whatever the data.
    """
    order = np.random.default_rng([seed, epoch]).permutation(indices)
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2:] = [np.concatenate(batches[-2:])]
    return batches


def restore(trainer: EpochTrainer, run: RunDir | None, checkpoint: str) -> int:
    """Load ``run``'s checkpoint into ``trainer``; returns the epochs it had done (0: none)."""
    state = run.load(checkpoint) if run is not None else None
    if state is None:
        return 0
    try:
        trainer.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError) as err:
        # same config, other model: a checkpoint made before a method's defaults changed
        # torch's message spans lines ("Error(s) in loading state_dict ...", then the keys)
        why = " ".join(str(err).split())[:300] or type(err).__name__
        raise SslsegError(
            f"{run.path(checkpoint)}: does not fit this model (made by another version of "
            f"sslseg?): {why}; delete the run folder or choose another out"
        ) from None
    return int(state["epoch"])


def run_epochs(
    trainer: EpochTrainer,
    run: RunDir | None,
    epochs: int,
    *,
    checkpoint: str = "last.pt",
    progress: bool = True,
    writer: bool = True,
    after_epoch: Callable[[int, dict[str, Any]], None] | None = None,
    board: Board | None = None,
) -> list[dict[str, Any]]:
    """Train ``trainer`` up to ``epochs``, resuming ``run`` where it stopped.

    After every epoch the record is appended to ``log.jsonl`` and then the checkpoint is
    written, both by the ``writer`` process only (rank 0 under DDP). Logging first means a
    kill between the two makes the resumed run redo that epoch, and the restore drops the
    line it had logged: the log of a resumed run equals that of an uninterrupted one.
    ``after_epoch(epochs_done, record)`` runs last (a DDP barrier; tests simulate kills
    there). ``board`` gets each record's numbers as TensorBoard scalars. Returns the records
    of the epochs this call trained.
    """
    start = restore(trainer, run, checkpoint)
    if run is not None and writer:
        run.truncate_log(start)
    steps = trainer.steps_per_epoch
    bar = tqdm(
        total=epochs * steps,
        initial=start * steps,
        unit="step",
        desc=trainer.desc,
        disable=not progress or not writer,
        dynamic_ncols=True,
    )
    history: list[dict[str, Any]] = []
    try:
        for epoch in range(start, epochs):
            record = trainer.train_one_epoch(epoch, bar)
            history.append(record)
            if run is not None and writer:
                run.append_log(record)
                if board is not None:
                    board.record(record)
                run.save(checkpoint, {**trainer.state_dict(), "epoch": epoch + 1})
            if after_epoch is not None:
                after_epoch(epoch + 1, record)
    finally:
        bar.close()
    return history
