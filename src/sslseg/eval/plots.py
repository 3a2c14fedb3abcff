"""Figures of the evaluation: accuracy against label fraction, and t-SNE scatters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: figures go to files only
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def save_figure(fig: plt.Figure, path: Path) -> Path:
    """Write ``fig`` to ``path`` through a temporary file (never half a PNG) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path


def plot_label_fractions(
    curves: Mapping[str, Sequence[Mapping[str, float]]],
    path: Path,
    title: str = "Linear evaluation",
    knn: Mapping[str, float] | None = None,
) -> Path:
    """Test accuracy against the fraction of training labels, one line per encoder (Fig. 11).

    ``curves`` maps an encoder name to rows with ``fraction`` and ``accuracy``; ``knn``
    (optional) adds each encoder's kNN accuracy at 100 % labels as a hollow marker.
    """
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (name, rows) in enumerate(curves.items()):
        color = f"C{i % 10}"
        xs = [100 * r["fraction"] for r in rows]
        ys = [100 * r["accuracy"] for r in rows]
        ax.plot(xs, ys, marker="o", color=color, label=name)
        if knn and name in knn and knn[name] is not None:
            ax.scatter(
                [100],
                [100 * knn[name]],
                marker="s",
                facecolors="none",
                edgecolors=color,
                s=60,
                label=f"{name} kNN",
            )
    ax.set_xlabel("training labels used (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.set_xticks(range(10, 101, 10))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_tsne(
    coords: np.ndarray,
    clusters: np.ndarray,
    labels: np.ndarray | None,
    path: Path,
    title: str = "",
    class_names: Sequence[str] = (),
) -> Path:
    """t-SNE scatter coloured by k-means cluster and, when there are labels, by label (Fig. 7)."""
    has_labels = labels is not None and bool((np.asarray(labels) >= 0).any())
    panels = 2 if has_labels else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 5), squeeze=False)
    cmap = plt.get_cmap("tab10" if max(clusters.max(initial=0) + 1, 1) <= 10 else "tab20")
    ax = axes[0][0]
    ax.scatter(
        coords[:, 0],
        coords[:, 1],
        c=clusters % cmap.N,
        cmap=cmap,
        vmin=0,
        vmax=cmap.N - 1,
        s=6,
        alpha=0.8,
        linewidths=0,
    )
    ax.set_title("k-means clusters")
    if has_labels:
        ax = axes[0][1]
        labels = np.asarray(labels)
        for c in np.unique(labels[labels >= 0]):
            sel = labels == c
            name = class_names[c] if c < len(class_names) else str(c)
            ax.scatter(
                coords[sel, 0],
                coords[sel, 1],
                color=cmap(int(c) % cmap.N),
                s=6,
                alpha=0.8,
                linewidths=0,
                label=name,
            )
        ax.set_title("labels")
        ax.legend(fontsize=7, markerscale=2.5, loc="best", framealpha=0.6)
    for ax in axes[0]:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)
