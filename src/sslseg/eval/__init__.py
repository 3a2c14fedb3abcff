"""Representation evaluation of frozen encoders: kNN, linear probes at label fractions,
k-means/t-SNE clustering (the paper's §3.4.1 and §3.4.3), and ``sslseg evaluate``."""

from sslseg.eval.clustering import kmeans_scores, tsne_embedding
from sslseg.eval.features import Encoder, cached_features, extract_features, resolve_encoder
from sslseg.eval.knn import knn_accuracy, knn_predict
from sslseg.eval.linear import fraction_subsets, linear_curve, linear_probe

__all__ = [
    "Encoder",
    "cached_features",
    "extract_features",
    "fraction_subsets",
    "kmeans_scores",
    "knn_accuracy",
    "knn_predict",
    "linear_curve",
    "linear_probe",
    "resolve_encoder",
    "tsne_embedding",
]
