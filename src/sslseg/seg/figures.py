"""PNG figures of a fine-tuning run: predictions beside ground truth, and loss curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_predictions(
    images: np.ndarray, masks: np.ndarray, probs: np.ndarray, path: Path, title: str = ""
) -> None:
    """Rows of image / ground truth / prediction (Figure 4.1 of seed 1)."""
    n = len(images)
    fig, axes = plt.subplots(n, 3, figsize=(6, 2 * n), squeeze=False)
    for row, (image, mask, prob) in enumerate(zip(images, masks, probs, strict=True)):
        shown = np.where(mask == 255, 0.5, mask.astype(float))
        for col, (data, name) in enumerate(
            [(image, "image"), (shown, "ground truth"), (prob.astype(float) > 0.5, "prediction")]
        ):
            ax = axes[row, col]
            ax.imshow(data, cmap=None if col == 0 else "gray", vmin=0, vmax=1)
            ax.set_axis_off()
            if row == 0:
                ax.set_title(name, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_curves(log: list[dict[str, Any]], path: Path) -> None:
    """Training and validation loss per epoch."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    epochs = [r["epoch"] for r in log]
    ax.plot(epochs, [r["train_loss"] for r in log], label="train BCE")
    ax.plot(epochs, [r["val_loss"] for r in log], label="validation BCE")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
