"""Splits as in seed 1 (§3.1): a fixed test set, nested development sets, train/val inside.

Item ids are sorted first, so the splits depend only on (ids, fractions, seed) and not on
the order a folder listing returned. One permutation orders everything: the first
``test_fraction`` of it is the test set, and each dev set is a prefix of the rest, so the
0.2 dev set lies inside the 0.5 one. Inside a dev set, a second seeded key picks the
``val_fraction`` validation items.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sslseg.errors import SslsegError


def _permutation(ids: list[str], seed: int) -> np.ndarray:
    # sorted first, so the order a folder listing returned never matters
    order = np.argsort(np.array(ids, dtype=object), kind="stable")
    return order[np.random.default_rng(seed).permutation(len(ids))]


def holdout(ids: list[str], test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rest, test) indices: the seeded test set that :func:`make_split` holds out.

    Pretraining leaves ``test`` out (unless it is asked to be transductive) and ``sslseg
    evaluate`` tests its probes on it, so with the same (fraction, seed) an encoder never saw
    the images it is scored on.
    """
    if not 0 < test_fraction < 1:
        raise SslsegError(f"config: test_fraction: {test_fraction} must be in (0, 1)")
    perm = _permutation(ids, seed)
    n_test = round(test_fraction * len(ids))
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


@dataclass(frozen=True)
class Split:
    """Indices into the store for one dev fraction."""

    dev_fraction: float
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    @property
    def dev(self) -> np.ndarray:
        return np.sort(np.concatenate([self.train, self.val]))


def make_split(
    ids: list[str],
    dev_fraction: float,
    seed: int,
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
) -> Split:
    """Train/val/test indices for ``dev_fraction`` of the whole dataset."""
    n = len(ids)
    if not 0 < test_fraction < 1:
        raise SslsegError(f"config: test_fraction: {test_fraction} must be in (0, 1)")
    if not 0 < dev_fraction <= 1 - test_fraction + 1e-9:
        raise SslsegError(
            f"config: dev_fraction: {dev_fraction} must be in (0, "
            f"{1 - test_fraction:g}] with test_fraction {test_fraction:g}"
        )
    if not 0 < val_fraction < 1:
        raise SslsegError(f"config: val_fraction: {val_fraction} must be in (0, 1)")
    perm = _permutation(ids, seed)
    n_test = round(test_fraction * n)
    n_dev = min(round(dev_fraction * n), n - n_test)
    if n_test < 1 or n_dev < 2:
        raise SslsegError(
            f"config: dev_fraction: {n} items give {n_dev} dev and {n_test} test "
            "items; need at least 2 dev and 1 test"
        )
    test, dev = perm[:n_test], perm[n_test : n_test + n_dev]
    # the val key is drawn for every non-test item, so val membership is stable across fractions
    val_key = np.random.default_rng([seed, 1]).random(n)
    n_val = max(1, round(val_fraction * n_dev))
    by_key = dev[np.argsort(val_key[dev], kind="stable")]
    val, train = by_key[:n_val], by_key[n_val:]
    return Split(dev_fraction, np.sort(train), np.sort(val), np.sort(test))


def has_layout_split(splits: list[str]) -> bool:
    """Whether every item carries the split its layout gave it (Roboflow's split folders)."""
    return bool(splits) and all(splits) and "test" in splits


def layout_split(
    splits: list[str],
    groups: list[str],
    dev_fraction: float,
    seed: int,
    val_fraction: float = 0.1,
    test_from: tuple[str, ...] = ("test",),
) -> Split:
    """The layout's own split: ``test_from`` splits are the test set, its ``val`` the
    validation set (unless ``val`` is tested on, then ``val_fraction`` of the train groups),
    and ``dev_fraction`` a nested share of the train *groups* — the augmented copies of one
    tile stay together, so no tile is both in train and val.
    """
    if not 0 < dev_fraction <= 1:
        raise SslsegError(f"config: dev_fraction: {dev_fraction} must be in (0, 1]")
    where = np.array(splits, dtype=object)
    test = np.flatnonzero(np.isin(where, list(test_from)))
    train_rows = np.flatnonzero(where == "train")
    names = sorted({groups[i] for i in train_rows})
    order = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    if "val" in test_from or not np.any(where == "val"):
        n_val = max(1, round(val_fraction * len(order)))
        val_groups, order = set(order[:n_val]), order[n_val:]
        val = np.array([i for i in train_rows if groups[i] in val_groups], dtype=np.int64)
    else:
        val = np.flatnonzero(where == "val")
    kept = set(order[: max(1, round(dev_fraction * len(order)))])
    train = np.array([i for i in train_rows if groups[i] in kept], dtype=np.int64)
    if len(train) < 1 or len(val) < 1 or len(test) < 1:
        raise SslsegError(
            f"config: dev_fraction: the layout's split gives {len(train)} train, {len(val)} val "
            f"and {len(test)} test items; need at least one of each"
        )
    return Split(dev_fraction, np.sort(train), np.sort(val), np.sort(test))


def train_subset(split: Split, fraction: float, seed: int) -> Split:
    """Keep ``fraction`` of the train images: prefixes of one seeded order, so nested."""
    if fraction >= 1:
        return split
    order = np.random.default_rng([seed, 2]).permutation(split.train)
    kept = np.sort(order[: max(1, round(fraction * len(order)))])
    return Split(split.dev_fraction, kept, split.val, split.test)


def store_split(
    ids: list[str],
    splits: list[str],
    groups: list[str],
    dev_fraction: float,
    seed: int,
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    test_from: tuple[str, ...] = ("test",),
    train_fraction: float = 1.0,
) -> Split:
    """The split a downstream run uses: the layout's own (:func:`layout_split`) where every
    item has one, else the seeded random :func:`make_split`; then the nested
    ``train_fraction`` of its train images (label-fraction curves)."""
    if has_layout_split(splits):
        split = layout_split(splits, groups, dev_fraction, seed, val_fraction, test_from)
    else:
        split = make_split(ids, dev_fraction, seed, test_fraction, val_fraction)
    return train_subset(split, train_fraction, seed)


def split_for(store: Any, config: Any) -> Split:
    """:func:`store_split` of a store (``ids``, ``splits``, ``groups``) under a downstream
    run's config (``dev_fraction``, ``seed``, ``test_fraction``, ``val_fraction``,
    ``test_splits``, ``train_fraction``: the keys ``finetune`` and ``detect`` share)."""
    return store_split(
        store.ids,
        store.splits,
        store.groups,
        config.dev_fraction,
        config.seed,
        config.test_fraction,
        config.val_fraction,
        tuple(config.test_splits),
        config.train_fraction,
    )


#: Sources that ship a standard test split, and the split names that contain its images.
#: Pretraining on any other split of these needs no hold-out of its own.
TEST_SPLITS = {"cifar10": ("test", "all"), "stl10": ("test",)}


def holdout_of(config: Any) -> dict[str, Any] | None:
    """The hold-out a pretraining-like config (``transductive``, ``holdout_fraction``,
    ``holdout_seed``, ``seed``) trains without: ``{fraction, seed}``, or None (transductive);
    ``holdout_seed`` -1 means the run's own seed."""
    if config.transductive:
        return None
    seed = config.seed if config.holdout_seed < 0 else config.holdout_seed
    return {"fraction": config.holdout_fraction, "seed": seed}


def pretraining_rows(
    source: str, ids: list[str], hold: dict[str, Any] | None, splits: list[str] | None = None
) -> np.ndarray | None:
    """Store rows pretraining may use; ``None`` means all of them.

    By default pretraining never sees an image it is later scored on: a source with a
    standard split is used as given (``PretrainConfig`` refuses its test split), any other
    source loses the seeded :func:`holdout` test set ``hold`` ({fraction, seed}). ``hold=None``
    (transductive) uses every image.
    """
    if hold is None or source in TEST_SPLITS:
        return None
    if splits and has_layout_split(splits):
        # the layout's own split: pretrain on its train folder only
        return np.flatnonzero(np.array(splits, dtype=object) == "train")
    rest, _ = holdout(ids, float(hold["fraction"]), int(hold["seed"]))
    return rest


def pretraining_saw(
    meta: dict[str, Any], source: str, root: str, ids: list[str], splits: list[str] | None = None
) -> set[str]:
    """The ids among ``ids`` (all the items of one store of ``source`` over ``root``) that an
    encoder with sidecar ``meta`` was pretrained on, by the rule of :func:`pretraining_rows`.
    """
    data = meta.get("data") or {}
    if data.get("source") != source or not same_root(str(data.get("root", "")), root):
        return set()
    if source in TEST_SPLITS:
        # a standard split: the encoder saw the test images only if it trained on that split
        return set(ids) if str(data.get("split", "")) in TEST_SPLITS[source] else set()
    # no holdout: transductive, or exported before hold-outs existed
    rows = pretraining_rows(source, ids, meta.get("holdout") or None, splits)
    return set(ids) if rows is None else {ids[i] for i in rows}


def refuse_seen_test_images(
    encoder: str, source: str, root: str, ids: list[str], splits: list[str], test: np.ndarray
) -> None:
    """Raise if the encoder file ``encoder`` (its ``encoder.json``) was pretrained on any of
    the ``test`` rows; ``random``, ``imagenet`` and encoders without a sidecar pass."""
    import json

    sidecar = Path(encoder).with_suffix(".json")
    if encoder in ("random", "imagenet") or not sidecar.is_file():
        return
    seen = pretraining_saw(json.loads(sidecar.read_text()), source, root, ids, splits)
    overlap = sum(ids[i] in seen for i in test)
    if overlap:
        raise SslsegError(
            f"{encoder}: was pretrained on {overlap} of the {len(test)} test images "
            "(pretrain with this seed's hold-out, or set transductive=true)"
        )


def same_root(a: str, b: str) -> bool:
    if not a or not b:
        return a == b
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
