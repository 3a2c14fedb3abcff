"""Clustering of frozen features (the paper's §3.4.1, Fig. 7): k-means, NMI/ARI, t-SNE.

Features are L2-normalised first (the same cosine geometry the kNN probe uses, and the one
contrastive losses train), then clustered by k-means with k = number of classes. With labels
we report normalised mutual information and the adjusted Rand index (Vinh et al., JMLR 2010;
Hubert & Arabie, 1985); the silhouette (Rousseeuw, 1987; cosine distance) is always given,
since it needs no labels. The 2-D map is t-SNE (van der Maaten & Hinton, JMLR 2008) on a
seeded subsample, after PCA to 50 dimensions as the t-SNE paper recommends for speed.

The scikit-learn steps here and in ``linear`` default to one BLAS/OpenMP thread: on a shared,
oversubscribed CPU OpenMP's spin-waiting made t-SNE of 30 points take 20 s instead of 0.5 s.
Pass ``threads=None`` for the libraries' default on a machine of your own.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score
from threadpoolctl import threadpool_limits


def l2_normalise(features: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


def kmeans_scores(
    features: np.ndarray,
    labels: np.ndarray | None,
    k: int,
    seed: int = 0,
    silhouette_points: int = 2000,
    threads: int | None = 1,
) -> tuple[np.ndarray, dict[str, float | None]]:
    """k-means cluster ids, plus ``nmi`` and ``ari`` (None without labels) and ``silhouette``.

    ``labels`` entries of -1 count as unlabelled; NMI/ARI use the labelled items only.
    ``threads`` caps BLAS/OpenMP threads (None: library default).
    """
    with threadpool_limits(threads):
        return _kmeans_scores(features, labels, k, seed, silhouette_points)


def _kmeans_scores(
    features: np.ndarray, labels: np.ndarray | None, k: int, seed: int, silhouette_points: int
) -> tuple[np.ndarray, dict[str, float | None]]:
    x = l2_normalise(features.astype(np.float64))
    k = max(2, min(k, len(x)))
    clusters = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x)
    scores: dict[str, float | None] = {"nmi": None, "ari": None, "silhouette": None}
    if len(np.unique(clusters)) > 1:
        sample = min(silhouette_points, len(x))
        scores["silhouette"] = float(
            silhouette_score(x, clusters, metric="cosine", sample_size=sample, random_state=seed)
        )
    if labels is not None:
        known = np.asarray(labels) >= 0
        if known.any():
            scores["nmi"] = float(normalized_mutual_info_score(labels[known], clusters[known]))
            scores["ari"] = float(adjusted_rand_score(labels[known], clusters[known]))
    return clusters, scores


def subsample(n: int, max_points: int, seed: int = 0) -> np.ndarray:
    """Sorted seeded subset of ``range(n)`` of at most ``max_points`` indices."""
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))


def tsne_embedding(
    features: np.ndarray, seed: int = 0, perplexity: float = 30.0, threads: int | None = 1
) -> np.ndarray:
    """2-D t-SNE coordinates (N x 2) of L2-normalised ``features`` (``threads``: as k-means)."""
    with threadpool_limits(threads):
        return _tsne(features, seed, perplexity)


def _tsne(features: np.ndarray, seed: int, perplexity: float) -> np.ndarray:
    x = l2_normalise(features.astype(np.float32))
    n = len(x)
    if n < 5:
        raise ValueError(f"t-SNE needs at least 5 points, got {n}")
    dims = min(50, x.shape[1], n)
    if x.shape[1] > dims:
        x = PCA(n_components=dims, random_state=seed).fit_transform(x)
    perplexity = min(perplexity, (n - 1) / 3)  # sklearn requires perplexity < n
    tsne = TSNE(
        n_components=2, perplexity=perplexity, init="pca", random_state=seed, learning_rate="auto"
    )
    return tsne.fit_transform(x).astype(np.float32)
