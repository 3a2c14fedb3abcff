import numpy as np

from sslseg.eval.clustering import kmeans_scores, subsample, tsne_embedding


def test_kmeans_recovers_separable_classes(blobs):
    x, y = blobs(30, 4, spread=0.1, seed=0)
    clusters, scores = kmeans_scores(x, y, k=4)
    assert scores["nmi"] > 0.99 and scores["ari"] > 0.99
    assert scores["silhouette"] > 0.5
    assert clusters.shape == (120,)


def test_kmeans_without_labels_gives_silhouette_only(blobs):
    x, _ = blobs(20, 3, spread=0.1, seed=1)
    _, scores = kmeans_scores(x, None, k=3)
    assert scores["nmi"] is None and scores["ari"] is None
    assert scores["silhouette"] > 0.5


def test_tsne_and_subsample_shapes(blobs):
    x, _ = blobs(10, 3, seed=2)
    coords = tsne_embedding(x, seed=0)
    assert coords.shape == (30, 2) and np.isfinite(coords).all()
    pick = subsample(1000, 50, seed=0)
    assert len(pick) == 50 and np.all(np.diff(pick) > 0)
    assert np.array_equal(subsample(10, 50), np.arange(10))
