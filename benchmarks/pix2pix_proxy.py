"""Seed 003's Pix2Pix proxy against the hashed cache and online SaliencyCut (issue 22).

The study (section 3.3.1, Fig. 6) replaced online SaliencyCut by a Pix2Pix network, found an
epoch fell from ~50 to ~30 min with visible information loss, and moved to an offline hashed
cache. This script measures the three on the same images and batch:

1. **generator**: ``sslseg pix2pix`` with ``--pix2pix-config`` (trained, or found finished);
2. **fidelity** on the images it never saw (the pretraining hold-out): per-pixel L1 to the
   true region images, the region-boundary F-measure and the spread left inside the true
   regions, beside the same figures for the image itself standing in for its region image
   (``identity_*``: what "no proxy" scores);
3. **epoch time**: SimCLR / ResNet-18 epochs over the generator's training images with
   ``saliency+default`` painted by (a) the cache (warm), (b) the generator, (c) SaliencyCut
   computed online (``saliency+default-online``, ``--workers`` processes); ``--repeats``
   epochs per arm, alternating, from the same initial weights; the median epoch per arm;
4. **downstream**: SimCLR pretrained with (a) and (b) for ``--ssl-epochs`` on those images at
   ``--seeds`` seeds, scored by kNN on the held-out images' breeds (``sslseg evaluate``), random
   init beside them; the paired difference (b) - (a) over seeds with its t interval
   (``experiments.stats.paired_iou_difference`` on the per-seed accuracies).

Every run folder lives under ``--out`` and resumes (rerun the same command after a kill).

    python benchmarks/pix2pix_proxy.py --seeds 0 1 2 --ssl-epochs 15

Last line: ``cache_epoch_s=… pix2pix_epoch_s=… online_epoch_s=… pix2pix_l1=… boundary_f=…``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from sslseg.augment.pix2pix import load_generator
from sslseg.augment.pix2pix_train import (
    Pix2PixConfig,
    fidelity,
    generate,
    region_images,
    train_pix2pix,
    train_rows,
)
from sslseg.augment.policies import build_view_maker
from sslseg.config import load_config
from sslseg.data.store import open_store
from sslseg.eval.command import EvaluateConfig, evaluate
from sslseg.experiments.stats import paired_iou_difference
from sslseg.ssl.command import PretrainConfig, pretrain_encoder
from sslseg.ssl.registry import build_method
from sslseg.ssl.train import TrainSettings, pretrain

ARMS = {"cache": "saliency+default", "pix2pix": "pix2pix+default"}


def epoch_times(store, train, generator: Path, args) -> dict[str, list[float]]:
    """Seconds per SimCLR epoch over ``store`` rows ``train`` for each painter."""
    sub = store.subset(train)
    specs = build_method("simclr").view_specs(store.side)
    makers = {
        "cache": build_view_maker(ARMS["cache"], specs, store=sub, progress=False),
        "pix2pix": build_view_maker(ARMS["pix2pix"], specs, generator=generator),
        "online": build_view_maker(
            "saliency+default-online", specs, store=sub, workers=args.workers
        ),
    }
    seconds: dict[str, list[float]] = {k: [] for k in makers}
    for rep in range(args.repeats):
        for name, maker in makers.items():
            torch.manual_seed(0)
            method = build_method("simclr")
            settings = TrainSettings(
                epochs=1,
                batch_size=args.batch_size,
                seed=rep,
                device="cpu",
                progress=False,
                warmup_epochs=0.0,
            )
            rec = pretrain(method, sub.images, maker, settings)["history"][-1]
            seconds[name].append(rec["seconds"])
            print(f"  repeat {rep + 1} {name:>8}: epoch {rec['seconds']:.2f} s")
    makers["online"].painter.close()
    return seconds


def downstream(p2p: Pix2PixConfig, generator: Path, args) -> dict[str, list[float]]:
    """kNN accuracy on the held-out breeds of each arm's encoder per seed (and random)."""
    encoders: dict[str, list[str]] = {arm: [] for arm in ARMS}
    for seed in args.seeds:
        for arm, policy in ARMS.items():
            cfg = PretrainConfig(
                method="simclr",
                source=p2p.source,
                root=p2p.root,
                side=p2p.side,
                epochs=args.ssl_epochs,
                batch_size=args.batch_size,
                seed=seed,
                holdout_seed=p2p.holdout()["seed"],
                holdout_fraction=p2p.holdout_fraction,
                policy=policy,
                pix2pix=str(generator) if arm == "pix2pix" else "",
                device="cpu",
                progress=False,
                out=str(args.out / "ssl" / f"{arm}-seed{seed}"),
            )
            t = time.perf_counter()
            encoders[arm].append(str(pretrain_encoder(cfg)))
            print(f"  {arm} seed {seed}: {time.perf_counter() - t:.0f} s")
    names = [p for arm in ARMS for p in encoders[arm]]
    result = evaluate(
        EvaluateConfig(
            encoders=["random", *names],
            source=p2p.source,
            root=p2p.root,
            side=p2p.side,
            test_fraction=p2p.holdout_fraction,
            seed=p2p.holdout()["seed"],
            fractions=[1.0],
            tsne=False,
            device="cpu",
            progress=False,
            out=str(args.out / "evaluate"),
        )
    )
    rows = list(result["encoders"].values())
    knn = {"random": [rows[0]["knn_acc"]]}
    for i, arm in enumerate(ARMS):
        knn[arm] = [
            r["knn_acc"] for r in rows[1 + i * len(args.seeds) : 1 + (i + 1) * len(args.seeds)]
        ]
    return knn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pix2pix-config", default="configs/pix2pix/pet64.yaml")
    ap.add_argument("--out", type=Path, default=Path("runs/pix2pix-proxy"))
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2, help="timed epochs per arm")
    ap.add_argument("--workers", type=int, default=2, help="processes of online SaliencyCut")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--ssl-epochs", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    p2p = load_config(Pix2PixConfig, args.pix2pix_config, [])
    generator = train_pix2pix(p2p)
    store = open_store(
        p2p.source, p2p.root or None, side=p2p.side, resize=p2p.resize, progress=False
    )
    train, held = train_rows(p2p, store)
    print(
        f"store {p2p.source} {p2p.side}px: {len(train)} training / {len(held)} held-out images; "
        f"batch {args.batch_size}; {torch.get_num_threads()} torch threads"
    )

    targets = region_images(store, p2p)[held]
    images = np.asarray(store.images)[held]
    net, _ = load_generator(generator)
    scores = fidelity(generate(net, images, torch.device("cpu")), targets)
    identity = fidelity(images.astype(np.float32) / 255, targets)
    print(
        f"fidelity on {len(held)} held-out images: pix2pix l1 {scores['l1']:.4f}, boundary F "
        f"{scores['boundary_f']:.4f}, region spread {scores['region_spread']:.4f}; the image "
        f"itself l1 {identity['l1']:.4f}, boundary F {identity['boundary_f']:.4f}, region "
        f"spread {identity['region_spread']:.4f} (the region image: 0, 1, 0)"
    )

    print("epoch times (SimCLR R18, fp32 on this CPU):")
    seconds = epoch_times(store, train, generator, args)
    med = {k: statistics.median(v) for k, v in seconds.items()}
    print(
        "median epoch: "
        + ", ".join(f"{k} {v:.2f} s" for k, v in med.items())
        + f"; pix2pix / cache {med['pix2pix'] / med['cache']:.2f}x, "
        f"online / cache {med['online'] / med['cache']:.2f}x"
    )

    print(f"downstream: SimCLR {args.ssl_epochs} epochs, seeds {args.seeds}, kNN on breeds:")
    knn = downstream(p2p, generator, args)
    for arm, accs in knn.items():
        print(
            f"  knn {arm}: " + " ".join(f"{a:.4f}" for a in accs) + f" (mean {np.mean(accs):.4f})"
        )
    diff = paired_iou_difference(knn["pix2pix"], knn["cache"])
    print(
        f"pix2pix - cache kNN: {diff.mean:+.4f} [{diff.low:+.4f}, {diff.high:+.4f}] "
        f"(95% paired t over {diff.n_seeds} seeds, p {diff.p_value:.3f})"
    )
    print(
        f"cache_epoch_s={med['cache']:.2f} pix2pix_epoch_s={med['pix2pix']:.2f} "
        f"online_epoch_s={med['online']:.2f} pix2pix_l1={scores['l1']:.4f} "
        f"boundary_f={scores['boundary_f']:.4f} identity_l1={identity['l1']:.4f} "
        f"identity_boundary_f={identity['boundary_f']:.4f} "
        f"pix2pix_spread={scores['region_spread']:.4f} "
        f"identity_spread={identity['region_spread']:.4f} knn_cache={np.mean(knn['cache']):.4f} "
        f"knn_pix2pix={np.mean(knn['pix2pix']):.4f} knn_diff={diff.mean:+.4f}"
    )


if __name__ == "__main__":
    main()
