"""``sslseg evaluate``: kNN, linear evaluation at label fractions and clustering of encoders.

One call evaluates one or more encoders (exported ``encoder.pt`` files, ``random``,
``imagenet``) on the same labelled data and writes, into ``out``: ``config.yaml``,
``log.jsonl`` (one line per step), ``results.json``, ``linear_fractions.png`` (one line per
encoder), ``linear_fractions.csv``, ``summary.csv`` and ``tsne_<encoder>.png``.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sslseg.config import (
    Alias,
    add_config_arguments,
    config_from_args,
    config_to_dict,
    require,
    require_choice,
)
from sslseg.data.splits import holdout, pretraining_saw
from sslseg.data.store import Store, open_store
from sslseg.devices import pick_device
from sslseg.errors import SslsegError
from sslseg.eval.clustering import kmeans_scores, subsample, tsne_embedding
from sslseg.eval.features import Encoder, auto_stem, cached_features, resolve_encoder
from sslseg.eval.knn import knn_accuracy
from sslseg.eval.linear import DEFAULT_FRACTIONS, linear_curve
from sslseg.eval.plots import plot_label_fractions, plot_tsne
from sslseg.runs import RunDir, atomic_write_text

# Sources whose ``split`` option gives a standard train/test pair; others are held out.
SPLIT_SOURCES = {"cifar10": ("train", "test"), "stl10": ("train", "test")}
AUTO = "auto"
CLUSTER_ON = ("test", "all")


@dataclass
class EvaluateConfig:
    """Settings of ``sslseg evaluate`` (``configs/evaluate.yaml`` lists them all)."""

    encoders: list[str] = field(default_factory=lambda: ["random"])  # encoder.pt, random, imagenet
    source: str = "cifar10"  # cifar10, stl10, image-folder, seg-folder, cats-vs-dogs, sample, ...
    root: str = ""  # the source's data folder
    source_options: dict[str, Any] = field(default_factory=dict)  # passed to the source
    train_split: str = "auto"  # auto: train/test for cifar10 and stl10, else a held-out part
    test_split: str = "auto"
    test_fraction: float = 0.2  # held-out share when the source has no splits
    side: int = 32
    resize: str = "squash"
    cache: str = ""  # store cache folder; "" = $SSLSEG_CACHE or the user cache
    feature_cache: str = "store"  # store (next to the stores) | run | off | a folder
    out: str = ""  # output folder (required)
    # For random / imagenet. auto: the arch and stem of the exported encoders compared with
    # (a baseline of another stem is another network); without any, resnet18 and the cifar
    # stem up to 64 px input, else imagenet.
    arch: str = AUTO
    stem: str = AUTO
    mixed_stems: bool = False  # allow encoders of different stems in one evaluation
    # Score encoders on images they were pretrained on (refused by default).
    transductive: bool = False  # true: allow encoders pretrained on the test images
    input_side: int = 0  # resize images to this before the encoder; 0 = store side
    batch_size: int = 256
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    seed: int = 0  # hold-out, random init, label subsets, k-means, t-SNE
    knn_k: int = 200  # neighbours of the weighted kNN
    knn_temperature: float = 0.1
    fractions: list[float] = field(default_factory=lambda: list(DEFAULT_FRACTIONS))
    linear_c: float = 0.1  # L2 strength 1/C; 0.1 converges in ~300 L-BFGS steps on 512-D
    linear_max_iter: int = 1000
    clusters: int = 0  # k of k-means; 0 = number of classes (10 without labels)
    # test: k-means / t-SNE of the held-out images; all: of every image (a held-out source only)
    cluster_on: str = "test"
    probes: bool = True  # kNN and linear evaluation; false: clustering only
    tsne: bool = True  # t-SNE figures of the held-out features
    tsne_points: int = 2000  # t-SNE on at most this many test images
    progress: bool = True  # progress bars
    # Threads for the scikit-learn steps (BLAS/OpenMP); 0 = the libraries' default. One is
    # the safe default: on a shared, oversubscribed CPU OpenMP's spinning made t-SNE of 30
    # points take 20 s instead of 0.5 s.
    sklearn_threads: int = 1

    def __post_init__(self) -> None:
        require(len(self.encoders) > 0, "encoders", "give at least one encoder")
        require(self.side >= 8, "side", f"{self.side} is too small (at least 8)")
        require(self.input_side >= 0, "input_side", "must be 0 (store side) or positive")
        require(self.batch_size > 0, "batch_size", "must be positive")
        require(self.knn_k > 0, "knn_k", "must be positive")
        require(self.knn_temperature > 0, "knn_temperature", "must be positive")
        require(0 < self.test_fraction < 1, "test_fraction", "must be in (0, 1)")
        require(
            len(self.fractions) > 0 and all(0 < f <= 1 for f in self.fractions),
            "fractions",
            f"{self.fractions}: each must be in (0, 1]",
        )
        require(self.linear_c > 0, "linear_c", "must be positive")
        require(self.clusters >= 0, "clusters", "must be 0 (number of classes) or at least 2")
        require_choice(self.cluster_on, CLUSTER_ON, "cluster_on")
        require(self.tsne_points >= 5, "tsne_points", "must be at least 5")
        require(self.sklearn_threads >= 0, "sklearn_threads", "must be 0 (default) or positive")


@dataclass
class Data:
    """Train and test images with labels, and the store folders they came from."""

    train: Store
    test: Store
    train_idx: np.ndarray
    test_idx: np.ndarray

    @property
    def train_labels(self) -> np.ndarray:
        return self.train.labels[self.train_idx]

    @property
    def test_labels(self) -> np.ndarray:
        return self.test.labels[self.test_idx]

    @property
    def labelled(self) -> bool:
        return bool(
            (self.train_labels >= 0).all()
            and (self.test_labels >= 0).all()
            and len(np.unique(self.train_labels)) > 1
        )


def load_data(cfg: EvaluateConfig) -> Data:
    """Open the train and test stores, or one store with a stratified held-out part."""
    cache = Path(cfg.cache).expanduser() if cfg.cache else None
    common = dict(
        side=cfg.side, resize=cfg.resize, cache=cache, progress=cfg.progress, **cfg.source_options
    )
    defaults = SPLIT_SOURCES.get(cfg.source)
    train_split = defaults[0] if cfg.train_split == "auto" and defaults else cfg.train_split
    test_split = defaults[1] if cfg.test_split == "auto" and defaults else cfg.test_split
    if train_split not in ("auto", "") and test_split not in ("auto", ""):
        if cfg.cluster_on == "all":
            raise SslsegError(
                f"config: cluster_on: 'all' clusters every image of one store; {cfg.source} is "
                f"evaluated on its {train_split}/{test_split} splits (cluster_on: test)"
            )
        if "split" in cfg.source_options:
            raise SslsegError(
                "config: source_options.split: give train_split and test_split instead"
            )
        train = open_store(cfg.source, cfg.root, split=train_split, **common)
        test = open_store(cfg.source, cfg.root, split=test_split, **common)
        data = Data(train, test, np.arange(len(train)), np.arange(len(test)))
    else:
        store = open_store(cfg.source, cfg.root, **common)
        # the same seeded hold-out that pretraining leaves out (data/splits.py)
        tr, te = holdout(store.ids, cfg.test_fraction, cfg.seed)
        data = Data(store, store, tr, te)
    if len(data.train_idx) == 0 or len(data.test_idx) == 0:
        raise SslsegError(f"{cfg.root}: need at least one training and one test image")
    return data


def resolve_encoders(cfg: EvaluateConfig, input_side: int) -> list[Encoder]:
    """Every encoder of ``cfg``; ``random`` / ``imagenet`` match the exported ones.

    A baseline must be the same network as what it is compared with: with ``arch`` / ``stem``
    left at ``auto`` they take those of the exported encoders. Mixed stems are refused unless
    ``mixed_stems`` (a CIFAR stem has ~16x the FLOPs and an 8x8 final map at 64 px).
    """
    exported = [resolve_encoder(s, seed=cfg.seed) for s in cfg.encoders if s not in BUILT_IN]
    archs = sorted({e.meta["arch"] for e in exported})
    stems = sorted({e.meta["stem"] for e in exported})
    arch = cfg.arch if cfg.arch != AUTO else (archs[0] if len(archs) == 1 else "resnet18")
    stem = cfg.stem if cfg.stem != AUTO else (stems[0] if len(stems) == 1 else AUTO)
    if stem == AUTO:
        stem = auto_stem(input_side, arch)
    by_spec = iter(exported)
    encoders = [
        resolve_encoder(s, arch, stem, cfg.seed, input_side) if s in BUILT_IN else next(by_spec)
        for s in cfg.encoders
    ]
    used = sorted({e.meta["stem"] for e in encoders})
    if len(used) > 1 and not cfg.mixed_stems:
        raise SslsegError(
            f"config: stem: the encoders have different stems ({', '.join(used)}), so their "
            "figures compare different networks; set stem= for the baselines, or "
            "mixed_stems=true to compare them anyway"
        )
    return encoders


BUILT_IN = ("random", "imagenet")


def check_unseen(encoders: list[Encoder], cfg: EvaluateConfig, data: Data) -> None:
    """Refuse an encoder pretrained on any image it is scored on (unless transductive): the
    probes' test images, and with ``cluster_on: all`` every image it clusters."""
    if cfg.transductive:
        return
    scored = {data.test.ids[i] for i in data.test_idx}
    what, hint = "test images", "evaluate with the seed and test_fraction of its holdout"
    if cfg.cluster_on == "all":
        scored |= {data.train.ids[i] for i in data.train_idx}
        what, hint = "images it clusters (cluster_on: all)", "use cluster_on: test"
    for enc in encoders:
        seen = pretraining_saw(enc.meta, cfg.source, cfg.root, data.test.ids)
        overlap = len(scored & seen)
        if overlap:
            raise SslsegError(
                f"{enc.spec}: was pretrained on {overlap} of the {len(scored)} {what} "
                f"({hint}, or set transductive=true to score it on them anyway)"
            )


def unique_names(names: list[str]) -> list[str]:
    """``names`` with repeats made distinct (``a``, ``a-2``, ...)."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return out


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def _csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else [])
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


class StepTimer:
    """Runs the steps of one encoder, recording each one's seconds (and logging them)."""

    def __init__(self, run: RunDir | None = None, encoder: str = "") -> None:
        self.run, self.encoder = run, encoder
        self.seconds: dict[str, float] = {}

    def __call__(self, step: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        tic = time.perf_counter()
        value = fn(*args, **kwargs)
        self.seconds[step] = time.perf_counter() - tic
        if self.run is not None:
            self.run.append_log(
                {"step": step, "encoder": self.encoder, "seconds": self.seconds[step]}
            )
        return value


def feature_cache_folder(cfg: EvaluateConfig, data: Data, run: RunDir) -> Path | None:
    """Where features are cached: next to the stores, in the run, a folder, or nowhere."""
    if cfg.feature_cache == "off":
        return None
    if cfg.feature_cache == "store":
        return data.train.root.parent / "features"
    if cfg.feature_cache == "run":
        return run.path("features")
    return Path(cfg.feature_cache).expanduser()


# --- features -------------------------------------------------------------------------------


def encoder_features(
    enc: Encoder,
    data: Data,
    cfg: EvaluateConfig,
    cache: Path | None,
    device: Any,
    timer: StepTimer | None = None,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Train and test features of one encoder, and whether both came from the cache.

    Features are cached per whole store, so the train and test parts of one store share it.
    """
    timer = timer or StepTimer()

    def part(store: Store, idx: np.ndarray) -> tuple[np.ndarray, bool]:
        feats, hit = cached_features(
            enc,
            store.images,
            store.root,
            cache,
            cfg.batch_size,
            cfg.input_side,
            device,
            cfg.progress,
        )
        return feats[idx], hit

    train_f, hit_train = timer("features_train", part, data.train, data.train_idx)
    test_f, hit_test = timer("features_test", part, data.test, data.test_idx)
    return train_f, test_f, bool(hit_train and hit_test)


# --- probes ---------------------------------------------------------------------------------


def probe_scores(
    train_f: np.ndarray,
    train_y: np.ndarray,
    test_f: np.ndarray,
    test_y: np.ndarray,
    cfg: EvaluateConfig,
    device: Any = "cpu",
    timer: StepTimer | None = None,
) -> dict[str, Any]:
    """kNN accuracy and the linear probe at every label fraction of ``cfg``."""
    timer = timer or StepTimer()
    knn = timer(
        "knn",
        knn_accuracy,
        train_f,
        train_y,
        test_f,
        test_y,
        cfg.knn_k,
        cfg.knn_temperature,
        device,
    )
    rows = timer(
        "linear",
        linear_curve,
        train_f,
        train_y,
        test_f,
        test_y,
        cfg.fractions,
        cfg.linear_c,
        cfg.linear_max_iter,
        cfg.seed,
        cfg.sklearn_threads or None,
    )
    return {
        "knn_acc": knn,
        "linear": rows,
        "linear_acc": {f"{r['fraction']:.1f}": r["accuracy"] for r in rows},
    }


# --- clustering -----------------------------------------------------------------------------


def clustered(
    data: Data, train_f: np.ndarray, test_f: np.ndarray, cfg: EvaluateConfig
) -> tuple[np.ndarray, np.ndarray | None]:
    """Features and labels (None unlabelled) of the images to cluster: the held-out ones, or
    with ``cluster_on: all`` every image of the store, in store order (so the hold-out's seed
    does not reorder them)."""
    labelled = data.labelled
    if cfg.cluster_on != "all":
        return test_f, data.test_labels if labelled else None
    rows = np.concatenate([data.train_idx, data.test_idx])
    order = np.argsort(rows, kind="stable")
    feats = np.concatenate([train_f, test_f])[order]
    return feats, data.train.labels[rows[order]] if labelled else None


def cluster_scores(
    test_f: np.ndarray,
    test_y: np.ndarray | None,
    k: int,
    cfg: EvaluateConfig,
    timer: StepTimer | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """k-means of the features given: cluster ids, and NMI / ARI / silhouette.

    By default these are the held-out images (the paper clusters the 20 % not pretrained on);
    :func:`clustered` picks them.
    """
    timer = timer or StepTimer()
    threads = cfg.sklearn_threads or None
    clusters, scores = timer("kmeans", kmeans_scores, test_f, test_y, k, cfg.seed, threads=threads)
    return clusters, {**scores, "k": k}


def tsne_figure(
    test_f: np.ndarray,
    clusters: np.ndarray,
    test_y: np.ndarray | None,
    scores: dict[str, Any],
    png: Path,
    title: str,
    class_names: list[str],
    cfg: EvaluateConfig,
    timer: StepTimer | None = None,
) -> Path | None:
    """t-SNE of (a seeded subsample of) the held-out features, coloured by cluster."""
    if not cfg.tsne or len(test_f) < 5:
        return None
    timer = timer or StepTimer()
    pick = subsample(len(test_f), cfg.tsne_points, cfg.seed)
    threads = cfg.sklearn_threads or None
    coords = timer("tsne", tsne_embedding, test_f[pick], cfg.seed, threads=threads)
    title += f": k-means k={scores['k']}"
    if scores["nmi"] is not None:
        title += f", NMI {scores['nmi']:.3f}, ARI {scores['ari']:.3f}"
    labels = test_y[pick] if test_y is not None else None
    plot_tsne(coords, clusters[pick], labels, png, title, class_names)
    return png


# --- one encoder, every encoder -------------------------------------------------------------


def evaluate_encoder(
    name: str,
    enc: Encoder,
    data: Data,
    cfg: EvaluateConfig,
    run: RunDir,
    cache: Path | None,
    device: Any,
) -> dict[str, Any]:
    """Features, probes and clustering of one encoder: its row of ``results.json``."""
    timer = StepTimer(run, name)
    row: dict[str, Any] = {"spec": enc.spec, "meta": enc.meta, "feature_dim": enc.feature_dim}
    train_f, test_f, row["features_cached"] = encoder_features(enc, data, cfg, cache, device, timer)
    if data.labelled and cfg.probes:
        row.update(
            probe_scores(train_f, data.train_labels, test_f, data.test_labels, cfg, device, timer)
        )
    else:
        row.update(knn_acc=None, linear_acc=None, linear=[])
    cluster_f, cluster_y = clustered(data, train_f, test_f, cfg)
    clusters, scores = cluster_scores(cluster_f, cluster_y, cluster_count(cfg, data), cfg, timer)
    row.update(scores, n_clustered=len(cluster_f))
    png = tsne_figure(
        cluster_f,
        clusters,
        cluster_y,
        scores,
        run.path(f"tsne_{_slug(name)}.png"),
        name,
        data.train.class_names,
        cfg,
        timer,
    )
    if png is not None:
        row["tsne_png"] = str(png)
    row["seconds"] = timer.seconds
    return row


def cluster_count(cfg: EvaluateConfig, data: Data) -> int:
    """k of k-means: ``clusters``, else the number of classes (10 without labels)."""
    labels = np.concatenate([data.train_labels, data.test_labels])
    n_classes = len(np.unique(labels)) if data.labelled else 0
    return cfg.clusters or n_classes or len(data.train.class_names) or 10


def evaluate(cfg: EvaluateConfig) -> dict[str, Any]:
    """Run every step for every encoder; returns what ``results.json`` holds."""
    require(bool(cfg.out), "out", "give an output folder")
    t_start = time.perf_counter()
    device = pick_device(cfg.device)
    # Resolve every encoder before the slow steps, so a bad path fails in a second.
    input_side = cfg.input_side or cfg.side
    encoders = resolve_encoders(cfg, input_side)
    run = RunDir(Path(cfg.out).expanduser()).create()
    run.write_config(cfg)
    t0 = time.perf_counter()
    data = load_data(cfg)
    load_seconds = time.perf_counter() - t0
    check_unseen(encoders, cfg, data)
    run.append_log(
        {
            "step": "data",
            "seconds": load_seconds,
            "train": len(data.train_idx),
            "test": len(data.test_idx),
            "labelled": data.labelled,
        }
    )
    results: dict[str, Any] = {
        "source": cfg.source,
        "root": cfg.root,
        "side": cfg.side,
        "input_side": input_side,
        "train_store": str(data.train.root),
        "test_store": str(data.test.root),
        "n_train": int(len(data.train_idx)),
        "n_test": int(len(data.test_idx)),
        "labelled": data.labelled,
        "class_names": data.train.class_names,
        "cluster_on": cfg.cluster_on,
        "device": str(device),
        "seconds_data": load_seconds,
        "encoders": {},
    }
    cache = feature_cache_folder(cfg, data, run)
    names = unique_names([e.name for e in encoders])
    for name, enc in zip(names, encoders, strict=True):
        results["encoders"][name] = evaluate_encoder(name, enc, data, cfg, run, cache, device)
    results["plots"] = write_report(results, run, cfg.source)
    results["seconds_total"] = time.perf_counter() - t_start
    results["config"] = config_to_dict(cfg)
    run.write_json("results.json", results)
    return results


# --- report ---------------------------------------------------------------------------------


def write_report(results: dict[str, Any], run: RunDir, source: str) -> dict[str, str]:
    """``linear_fractions.png`` / ``.csv`` (when labelled) and ``summary.csv``; their paths."""
    rows = results["encoders"]
    curves = {name: row["linear"] for name, row in rows.items() if row["linear"]}
    plots: dict[str, str] = {}
    if curves:
        plots["linear_fractions"] = str(
            plot_label_fractions(
                curves,
                run.path("linear_fractions.png"),
                f"Linear evaluation on {source} ({results['n_train']} train, "
                f"{results['n_test']} test)",
                {name: rows[name]["knn_acc"] for name in curves},
            )
        )
        atomic_write_text(run.path("linear_fractions.csv"), _csv(fraction_rows(curves)))
        plots["linear_fractions_csv"] = str(run.path("linear_fractions.csv"))
    atomic_write_text(run.path("summary.csv"), _csv(summary_rows(rows)))
    plots["summary_csv"] = str(run.path("summary.csv"))
    return plots


def fraction_rows(curves: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per (encoder, label fraction) of the linear curves."""
    keys = ("fraction", "n_labels", "accuracy", "converged")
    return [{"encoder": n, **{k: r[k] for k in keys}} for n, rows in curves.items() for r in rows]


def summary_rows(rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per encoder: kNN, linear accuracies, clustering scores and step seconds."""
    summary = []
    for name, row in rows.items():
        lin = row["linear_acc"] or {}
        summary.append(
            {
                "encoder": name,
                "spec": row["spec"],
                "knn_acc": row["knn_acc"],
                **{f"linear_{k}": v for k, v in lin.items()},
                "nmi": row["nmi"],
                "ari": row["ari"],
                "silhouette": row["silhouette"],
                **{f"seconds_{k}": round(v, 3) for k, v in row["seconds"].items()},
            }
        )
    return summary


def summary_line(name: str, row: dict[str, Any]) -> str:
    """The one line ``sslseg evaluate`` prints for an encoder."""
    parts = [f"{name}:"]
    if row["knn_acc"] is not None:
        lin = row["linear_acc"]
        parts.append(f"kNN {100 * row['knn_acc']:.1f}%")
        parts.append("linear " + " ".join(f"{k}:{100 * v:.1f}%" for k, v in lin.items()))
    for key in ("nmi", "ari", "silhouette"):
        if row[key] is not None:
            parts.append(f"{key} {row[key]:.3f}")
    return " ".join(parts)


# --- command --------------------------------------------------------------------------------

#: flags kept as aliases of config keys (a flag wins over the same key=value)
ALIASES = (
    Alias(
        "--encoder",
        "encoders",
        "encoder.pt (or its run folder), 'random' or 'imagenet'",
        repeat=True,
        metavar="PATH",
    ),
    Alias("--source", "source", "data source (cifar10, stl10, image-folder, ...)"),
    Alias("--root", "root", "data folder of the source"),
    Alias("--train-split", "train_split", "source split for training probes"),
    Alias("--test-split", "test_split", "source split for testing"),
    Alias("--side", "side", "store side in pixels"),
    Alias("--input-side", "input_side", "resize to this side before the encoder (0 = side)"),
    Alias("--out", "out", "output folder"),
    Alias("--device", "device", "auto, cpu, cuda, cuda:1"),
    Alias("--seed", "seed", "hold-out, random init, label subsets, k-means, t-SNE"),
    Alias("--no-tsne", "tsne", "skip the t-SNE figures", const=False),
)

NOTES = """example: sslseg evaluate encoders=[random,runs/simclr/encoder.pt] source=cifar10 \\
    root=../shared/data/cifar10 out=runs/eval   (configs/evaluate.yaml lists every key)"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``sslseg evaluate [CONFIG.yaml] [key=value ...]``, with the flags of :data:`ALIASES`."""
    add_config_arguments(parser, EvaluateConfig, ALIASES, NOTES)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``sslseg evaluate``; prints one summary line per encoder."""
    cfg = config_from_args(args)
    results = evaluate(cfg)
    for name, row in results["encoders"].items():
        print(summary_line(name, row))
    first = next(iter(results["encoders"].values()))
    print(f"k-means k={first['k']} of {first['n_clustered']} images (cluster_on: {cfg.cluster_on})")
    print(f"results: {Path(cfg.out) / 'results.json'} ({results['seconds_total']:.1f} s)")
    return 0
