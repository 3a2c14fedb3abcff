"""PNG figures of the augmentation stage: the Pix2Pix proxy beside SaliencyCut (Fig. 6)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_pix2pix_examples(
    images: np.ndarray, targets: np.ndarray, generated: np.ndarray, path: Path, title: str = ""
) -> None:
    """Rows of image / SaliencyCut region image / Pix2Pix output (the study's Fig. 6).

    ``images``, ``targets``: uint8 ``N x S x S x 3``; ``generated``: float in [0, 1]."""
    n = len(images)
    fig, axes = plt.subplots(n, 3, figsize=(6, 2 * n), squeeze=False)
    columns = ("image (held out)", "SaliencyCut regions", "Pix2Pix")
    for row in range(n):
        for col, data in enumerate((images[row], targets[row], generated[row])):
            ax = axes[row, col]
            ax.imshow(data if data.dtype == np.uint8 else np.clip(data, 0, 1))
            ax.set_axis_off()
            if row == 0:
                ax.set_title(columns[col], fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_pix2pix_curves(log: list[dict], path: Path) -> None:
    """Per epoch: training L1, held-out L1 (left) and held-out boundary F (right)."""
    epochs = [r["epoch"] for r in log]
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.2))
    left.plot(epochs, [r["g_l1"] for r in log], label="train L1")
    if all("held_l1" in r for r in log):
        left.plot(epochs, [r["held_l1"] for r in log], label="held-out L1")
        right.plot(epochs, [r["held_boundary_f"] for r in log], color="C2")
    left.set_xlabel("epoch")
    left.set_ylabel("L1 to the region image")
    left.legend(fontsize=8)
    right.set_xlabel("epoch")
    right.set_ylabel("held-out boundary F")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
