"""``sslseg evaluate``: kNN, linear evaluation at label fractions and clustering of encoders.

One call evaluates one or more encoders (exported ``encoder.pt`` files, ``random``,
``imagenet``) on the same labelled data and writes, into ``--out``: ``config.yaml``,
``log.jsonl`` (one line per step), ``results.json``, ``linear_fractions.png`` (one line per
encoder), ``linear_fractions.csv``, ``summary.csv`` and ``tsne_<encoder>.png``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sslseg.config import config_to_dict, load_config, require
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


@dataclass
class EvaluateConfig:
    """Settings of ``sslseg evaluate`` (``configs/evaluate.yaml`` lists them all)."""

    encoders: list[str] = field(default_factory=lambda: ["random"])
    source: str = "cifar10"
    root: str = ""
    train_split: str = "auto"  # auto: train/test for cifar10 and stl10, else a held-out part
    test_split: str = "auto"
    test_fraction: float = 0.2  # held-out share when the source has no splits
    side: int = 32
    resize: str = "squash"
    cache: str = ""  # store cache folder; "" = $SSLSEG_CACHE or the user cache
    feature_cache: str = "store"  # store (next to the stores) | run | off | a folder
    out: str = ""
    # For random / imagenet. auto: the arch and stem of the exported encoders compared with
    # (a baseline of another stem is another network); without any, resnet18 and the cifar
    # stem up to 64 px input, else imagenet.
    arch: str = AUTO
    stem: str = AUTO
    mixed_stems: bool = False  # allow encoders of different stems in one evaluation
    # Score encoders on images they were pretrained on (refused by default).
    transductive: bool = False
    input_side: int = 0  # resize images to this before the encoder; 0 = store side
    batch_size: int = 256
    device: str = "auto"
    seed: int = 0
    knn_k: int = 200
    knn_temperature: float = 0.1
    fractions: list[float] = field(default_factory=lambda: list(DEFAULT_FRACTIONS))
    linear_c: float = 0.1  # L2 strength 1/C; 0.1 converges in ~300 L-BFGS steps on 512-D
    linear_max_iter: int = 1000
    clusters: int = 0  # k of k-means; 0 = number of classes (10 without labels)
    tsne: bool = True
    tsne_points: int = 2000
    progress: bool = True
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
    common = dict(side=cfg.side, resize=cfg.resize, cache=cache, progress=cfg.progress)
    defaults = SPLIT_SOURCES.get(cfg.source)
    train_split = defaults[0] if cfg.train_split == "auto" and defaults else cfg.train_split
    test_split = defaults[1] if cfg.test_split == "auto" and defaults else cfg.test_split
    if train_split not in ("auto", "") and test_split not in ("auto", ""):
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
        stem = auto_stem(input_side)
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
    """Refuse an encoder pretrained on any of the probes' test images (unless transductive)."""
    if cfg.transductive:
        return
    test_ids = {data.test.ids[i] for i in data.test_idx}
    for enc in encoders:
        seen = pretraining_saw(enc.meta, cfg.source, cfg.root, data.test.ids)
        overlap = len(test_ids & seen)
        if overlap:
            raise SslsegError(
                f"{enc.spec}: was pretrained on {overlap} of the {len(test_ids)} test images "
                "(evaluate with the seed and test_fraction of its holdout, or set "
                "transductive=true to score it on them anyway)"
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


def evaluate(cfg: EvaluateConfig) -> dict[str, Any]:
    """Run every step for every encoder; returns what ``results.json`` holds."""
    require(bool(cfg.out), "out", "give an output folder (--out)")
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
    names = unique_names([e.name for e in encoders])
    run.append_log(
        {
            "step": "data",
            "seconds": load_seconds,
            "train": len(data.train_idx),
            "test": len(data.test_idx),
            "labelled": data.labelled,
        }
    )

    if cfg.feature_cache == "off":
        feature_cache = None
    elif cfg.feature_cache == "store":
        feature_cache = data.train.root.parent / "features"
    elif cfg.feature_cache == "run":
        feature_cache = run.path("features")
    else:
        feature_cache = Path(cfg.feature_cache).expanduser()

    labelled = data.labelled
    threads = cfg.sklearn_threads or None
    class_names = data.train.class_names
    n_classes = len(np.unique(data.train_labels)) if labelled else 0
    k_clusters = cfg.clusters or n_classes or len(class_names) or 10
    results: dict[str, Any] = {
        "source": cfg.source,
        "root": cfg.root,
        "side": cfg.side,
        "input_side": input_side,
        "train_store": str(data.train.root),
        "test_store": str(data.test.root),
        "n_train": int(len(data.train_idx)),
        "n_test": int(len(data.test_idx)),
        "labelled": labelled,
        "class_names": class_names,
        "device": str(device),
        "seconds_data": load_seconds,
        "encoders": {},
    }
    curves: dict[str, list[dict[str, Any]]] = {}
    knn_accs: dict[str, float | None] = {}
    for name, enc in zip(names, encoders, strict=True):
        seconds: dict[str, float] = {}
        row: dict[str, Any] = {"spec": enc.spec, "meta": enc.meta, "feature_dim": enc.feature_dim}

        def timed(step: str, fn: Any, *a: Any, _s: dict = seconds, _n: str = name, **kw: Any):
            t = time.perf_counter()
            value = fn(*a, **kw)
            _s[step] = time.perf_counter() - t
            run.append_log({"step": step, "encoder": _n, "seconds": _s[step]})
            return value

        def features(store: Store, idx: np.ndarray, _enc: Any = enc) -> tuple[np.ndarray, bool]:
            # Features are cached per whole store, so train/test parts of one store share it.
            feats, hit = cached_features(
                _enc,
                store.images,
                store.root,
                feature_cache,
                cfg.batch_size,
                cfg.input_side,
                device,
                cfg.progress,
            )
            return feats[idx], hit

        train_f, hit_tr = timed("features_train", features, data.train, data.train_idx)
        test_f, hit_te = timed("features_test", features, data.test, data.test_idx)
        row["features_cached"] = bool(hit_tr and hit_te)

        if labelled:
            row["knn_acc"] = timed(
                "knn",
                knn_accuracy,
                train_f,
                data.train_labels,
                test_f,
                data.test_labels,
                cfg.knn_k,
                cfg.knn_temperature,
                device,
            )
            rows = timed(
                "linear",
                linear_curve,
                train_f,
                data.train_labels,
                test_f,
                data.test_labels,
                cfg.fractions,
                cfg.linear_c,
                cfg.linear_max_iter,
                cfg.seed,
                threads,
            )
            row["linear"] = rows
            row["linear_acc"] = {f"{r['fraction']:.1f}": r["accuracy"] for r in rows}
            curves[name] = rows
            knn_accs[name] = row["knn_acc"]
        else:
            row["knn_acc"], row["linear_acc"], row["linear"] = None, None, []

        # Clustering is on the held-out images (the paper clusters the 20 % not pretrained on).
        clu_labels = data.test_labels if labelled else None
        clusters, scores = timed(
            "kmeans", kmeans_scores, test_f, clu_labels, k_clusters, cfg.seed, threads=threads
        )
        row.update(scores)
        row["k"] = k_clusters
        if cfg.tsne and len(test_f) >= 5:
            pick = subsample(len(test_f), cfg.tsne_points, cfg.seed)
            coords = timed("tsne", tsne_embedding, test_f[pick], cfg.seed, threads=threads)
            png = run.path(f"tsne_{_slug(name)}.png")
            title = f"{name}: k-means k={k_clusters}"
            if scores["nmi"] is not None:
                title += f", NMI {scores['nmi']:.3f}, ARI {scores['ari']:.3f}"
            plot_tsne(
                coords,
                clusters[pick],
                clu_labels[pick] if labelled else None,
                png,
                title,
                class_names,
            )
            row["tsne_png"] = str(png)
        row["seconds"] = seconds
        results["encoders"][name] = row

    plots: dict[str, str] = {}
    if curves:
        plots["linear_fractions"] = str(
            plot_label_fractions(
                curves,
                run.path("linear_fractions.png"),
                f"Linear evaluation on {cfg.source} ({results['n_train']} train, "
                f"{results['n_test']} test)",
                knn_accs,
            )
        )
        frac_rows = [
            {"encoder": n, **{k: r[k] for k in ("fraction", "n_labels", "accuracy", "converged")}}
            for n, rows in curves.items()
            for r in rows
        ]
        atomic_write_text(run.path("linear_fractions.csv"), _csv(frac_rows))
        plots["linear_fractions_csv"] = str(run.path("linear_fractions.csv"))
    summary = []
    for name, row in results["encoders"].items():
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
    atomic_write_text(run.path("summary.csv"), _csv(summary))
    plots["summary_csv"] = str(run.path("summary.csv"))
    results["plots"] = plots
    results["seconds_total"] = time.perf_counter() - t_start
    results["config"] = config_to_dict(cfg)
    run.write_json("results.json", results)
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``sslseg evaluate``; any config key can also be set as ``key=value``."""
    parser.add_argument("--config", help="YAML config (see configs/evaluate.yaml)")
    parser.add_argument(
        "--encoder",
        action="append",
        dest="encoders",
        metavar="PATH",
        help="encoder.pt (or its run folder), 'random' or 'imagenet'; repeatable",
    )
    parser.add_argument("--source", help="data source name (cifar10, stl10, image-folder, ...)")
    parser.add_argument("--root", help="data folder of the source")
    parser.add_argument(
        "--train-split", dest="train_split", help="source split for training probes (default: auto)"
    )
    parser.add_argument("--test-split", dest="test_split", help="source split for testing")
    parser.add_argument("--side", type=int, help="store side in pixels")
    parser.add_argument(
        "--input-side",
        dest="input_side",
        type=int,
        help="resize to this side before the encoder (0 = store side)",
    )
    parser.add_argument("--out", help="output folder")
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:1")
    parser.add_argument("--seed", type=int)
    parser.add_argument(
        "--no-tsne", dest="tsne", action="store_false", default=None, help="skip the t-SNE figures"
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="config overrides, e.g. knn_k=100 fractions=[0.1,0.5,1.0]",
    )


FLAG_KEYS = (
    "encoders",
    "source",
    "root",
    "train_split",
    "test_split",
    "side",
    "input_side",
    "out",
    "device",
    "seed",
    "tsne",
)


def config_from_args(args: argparse.Namespace) -> EvaluateConfig:
    """YAML, then ``key=value`` overrides, then explicit flags (flags win)."""
    cfg = load_config(
        EvaluateConfig, getattr(args, "config", None), list(getattr(args, "overrides", []) or [])
    )
    flags = {k: getattr(args, k) for k in FLAG_KEYS if getattr(args, k, None) is not None}
    return dataclasses.replace(cfg, **flags) if flags else cfg


def run(args: argparse.Namespace) -> int:
    """Entry point of ``sslseg evaluate``; prints one summary line per encoder."""
    cfg = config_from_args(args)
    results = evaluate(cfg)
    for name, row in results["encoders"].items():
        parts = [f"{name}:"]
        if row["knn_acc"] is not None:
            lin = row["linear_acc"]
            parts.append(f"kNN {100 * row['knn_acc']:.1f}%")
            parts.append("linear " + " ".join(f"{k}:{100 * v:.1f}%" for k, v in lin.items()))
        for key in ("nmi", "ari", "silhouette"):
            if row[key] is not None:
                parts.append(f"{key} {row[key]:.3f}")
        print(" ".join(parts))
    print(f"results: {Path(cfg.out) / 'results.json'} ({results['seconds_total']:.1f} s)")
    return 0
