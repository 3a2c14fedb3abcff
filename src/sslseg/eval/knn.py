"""Weighted k-nearest-neighbour classification on frozen features.

As in Wu et al., "Unsupervised Feature Learning via Non-Parametric Instance Discrimination"
(InstDisc, CVPR 2018) and solo-learn's ``WeightedKNNClassifier``: features are L2-normalised,
the ``k`` most cosine-similar training features vote for their labels, each vote weighted by
``exp(similarity / temperature)``. Defaults k = 200, temperature = 0.1 are InstDisc's.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


@torch.no_grad()
def knn_predict(
    train_features: np.ndarray | torch.Tensor,
    train_labels: np.ndarray | torch.Tensor,
    test_features: np.ndarray | torch.Tensor,
    k: int = 200,
    temperature: float = 0.1,
    num_classes: int | None = None,
    batch_size: int = 1024,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Predicted label of each test feature (N_test int64) by temperature-weighted kNN votes.

    Test features are processed ``batch_size`` at a time, so memory is
    ``batch_size x N_train`` similarities rather than ``N_test x N_train``.
    """
    train = F.normalize(torch.as_tensor(train_features, dtype=torch.float32, device=device), dim=1)
    test = F.normalize(torch.as_tensor(test_features, dtype=torch.float32, device=device), dim=1)
    labels = torch.as_tensor(train_labels, dtype=torch.int64, device=device)
    if train.shape[0] == 0:
        raise ValueError("knn_predict: no training features")
    classes = int(num_classes if num_classes is not None else labels.max().item() + 1)
    k = min(k, train.shape[0])
    preds = []
    for start in range(0, test.shape[0], batch_size):
        sim = test[start : start + batch_size] @ train.T
        top_sim, top_idx = sim.topk(k, dim=1)
        votes = torch.zeros(sim.shape[0], classes, device=device)
        votes.scatter_add_(1, labels[top_idx], (top_sim / temperature).exp())
        preds.append(votes.argmax(dim=1).cpu())
    if not preds:
        return np.zeros(0, np.int64)
    return torch.cat(preds).numpy()


def knn_accuracy(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    k: int = 200,
    temperature: float = 0.1,
    device: torch.device | str = "cpu",
) -> float:
    """Top-1 accuracy of :func:`knn_predict` against ``test_labels``."""
    classes = int(max(train_labels.max(), test_labels.max())) + 1
    pred = knn_predict(
        train_features, train_labels, test_features, k, temperature, classes, device=device
    )
    return float((pred == np.asarray(test_labels)).mean())
