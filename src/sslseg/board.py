"""TensorBoard event files beside ``log.jsonl`` (``tensorboard=true`` in any training command).

``tensorboard --logdir runs`` then shows every run: the numbers of each epoch's log record as
scalars, the augmented views a pretraining run starts with, and the test predictions at the
end of fine-tuning. Off (the default) it writes nothing and imports nothing.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from sslseg.runs import RunDir

FOLDER = "tensorboard"


class Board:
    """One run's event writer; every method is a no-op when the board is off."""

    def __init__(self, run: RunDir | None, enabled: bool) -> None:
        self.writer = None
        if enabled and run is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(run.path(FOLDER)))

    def record(self, record: dict[str, Any], prefix: str = "train") -> None:
        """Every finite number of an epoch's log record, at step ``record["epoch"]``."""
        if self.writer is None:
            return
        step = int(record.get("epoch", 0))
        for key, value in record.items():
            is_number = isinstance(value, int | float) and not isinstance(value, bool)
            if key != "epoch" and is_number and math.isfinite(value):
                self.writer.add_scalar(f"{prefix}/{key}", value, step)
        self.writer.flush()

    def images(self, tag: str, images: torch.Tensor, step: int = 0, per_row: int = 8) -> None:
        """A grid of ``images`` (``N x C x H x W``, float in [0, 1] or 0-255), ``per_row``
        to a row."""
        if self.writer is None:
            return
        from torchvision.utils import make_grid

        images = images.detach().float().cpu()
        if images.max() > 1:
            images = images / 255
        grid = make_grid(images.clamp(0, 1), nrow=min(per_row, len(images)), padding=1)
        self.writer.add_image(tag, grid, step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
