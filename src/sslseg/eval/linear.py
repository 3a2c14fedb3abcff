"""Linear evaluation at label fractions (the paper's §3.4.3, Figs. 11-12).

A multinomial logistic regression (scikit-learn, L-BFGS) is trained on standardised frozen
features of 10 %, 20 %, ..., 100 % of the labelled training images and scored on the full
test set. The subsets are stratified (each class keeps its share) and nested (the 20 % set
contains the 10 % set), so a curve shows the effect of more labels and not of a new draw.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

DEFAULT_FRACTIONS = tuple(round(0.1 * i, 1) for i in range(1, 11))


def fraction_subsets(
    labels: np.ndarray, fractions: Sequence[float], seed: int = 0
) -> dict[float, np.ndarray]:
    """Stratified, nested index subsets of ``labels`` for each fraction in (0, 1].

    Each class is shuffled once with ``seed``; the subset for fraction f takes the first
    ``max(1, round(f * n_class))`` items of every class, so subsets of larger fractions
    contain those of smaller ones. Indices are returned sorted.
    """
    labels = np.asarray(labels)
    for f in fractions:
        if not 0 < f <= 1:
            raise ValueError(f"fraction {f} is not in (0, 1]")
    rng = np.random.default_rng(seed)
    orders = {c: rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)}
    out = {}
    for f in fractions:
        parts = [order[: max(1, int(round(f * len(order))))] for order in orders.values()]
        out[f] = np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
    return out


def linear_probe(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    c: float = 0.1,
    max_iter: int = 1000,
    seed: int = 0,
) -> tuple[float, bool]:
    """Test accuracy of logistic regression on standardised features, and whether it converged.

    The scaler is fitted on the labelled training subset only: a probe at 10 % labels must
    not see statistics of the other 90 %.
    """
    scaler = StandardScaler().fit(train_features)
    clf = LogisticRegression(C=c, max_iter=max_iter, random_state=seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(scaler.transform(train_features), train_labels)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    acc = float((clf.predict(scaler.transform(test_features)) == test_labels).mean())
    return acc, converged


def linear_curve(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    c: float = 0.1,
    max_iter: int = 1000,
    seed: int = 0,
    threads: int | None = 1,
) -> list[dict[str, float | int | bool]]:
    """One row per fraction: ``fraction``, ``n_labels``, ``accuracy``, ``converged``.

    ``threads`` caps BLAS threads (None: library default); see ``sslseg.eval.clustering``.
    """
    with threadpool_limits(threads):
        return _curve(
            train_features, train_labels, test_features, test_labels, fractions, c, max_iter, seed
        )


def _curve(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    fractions: Sequence[float],
    c: float,
    max_iter: int,
    seed: int,
) -> list[dict[str, float | int | bool]]:
    rows = []
    for f, idx in fraction_subsets(train_labels, fractions, seed).items():
        if len(np.unique(train_labels[idx])) < 2:
            # Logistic regression needs two classes; a one-class subset predicts that class.
            only = train_labels[idx][0]
            acc, converged = float((test_labels == only).mean()), True
        else:
            acc, converged = linear_probe(
                train_features[idx],
                train_labels[idx],
                test_features,
                test_labels,
                c,
                max_iter,
                seed,
            )
        rows.append(
            {
                "fraction": float(f),
                "n_labels": int(len(idx)),
                "accuracy": acc,
                "converged": converged,
            }
        )
    return rows
