"""A PNG of predicted instances: each test image with its true outline and predicted masks."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_instances(
    images: list[np.ndarray],
    truths: list[np.ndarray],
    preds: list[dict[str, np.ndarray]],
    path: Path,
    threshold: float = 0.5,
) -> None:
    """Row 1: image + true instances (outlines); row 2: predictions over ``threshold``."""
    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(2.4 * n, 5), squeeze=False)
    colours = plt.get_cmap("tab20")
    for j, (image, truth, pred) in enumerate(zip(images, truths, preds)):
        top, bottom = axes[0, j], axes[1, j]
        top.imshow(image)
        for k, m in enumerate(truth):
            top.contour(m, levels=[0.5], colors=[colours(k % 20)], linewidths=0.8)
        top.set_title(f"{len(truth)} true", fontsize=8)
        keep = pred["scores"] >= threshold
        overlay = np.array(image, dtype=np.float32) / 255
        for k, (m, box) in enumerate(zip(pred["masks"][keep], pred["boxes"][keep])):
            colour = np.array(colours(k % 20)[:3])
            overlay[m] = 0.5 * overlay[m] + 0.5 * colour
            x1, y1, x2, y2 = box
            bottom.add_patch(
                plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color=colour, linewidth=0.6)
            )
        bottom.imshow(overlay)
        bottom.set_title(f"{int(keep.sum())} predicted", fontsize=8)
        for ax in (top, bottom):
            ax.axis("off")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
