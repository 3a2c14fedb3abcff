"""Cost of the saliency policy: one pretraining epoch under ``default`` vs ``sgd+default``.

Issue 4's target: on a warm cache, ``sgd+default`` costs at most 5 % more per epoch than
``default`` (the study's point, section 3.3.2: offline hashing makes SGD free at training
time). Also measures the cold fill rate of the cache (saliency of every image, on ``workers``
processes) in images per second.

A small subset of a store (``--images``, evenly spread over the store so both classes are in)
is copied to memory; the cache is filled cold in a fresh temporary folder; then SimCLR /
ResNet-18 runs one epoch per policy, alternating ``default``, ``sgd+default``, ... ``--repeats``
times from the same initial weights, and the fastest epoch of each policy is compared (the
minimum is the least noisy estimate on a shared machine). The time spent in the view maker
alone is reported too.

    python benchmarks/policy_overhead.py --images 512 --batch-size 64

Last line: ``overhead=<percent> fill_img_s=<images per second>``.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time

import numpy as np
import torch

from sslseg.augment.policies import build_view_maker
from sslseg.data.store import open_store
from sslseg.saliency.cache import fill_store
from sslseg.ssl.registry import build_method
from sslseg.ssl.train import TrainSettings, pretrain


class Timed:
    """A view maker wrapper that adds up the seconds spent making views."""

    def __init__(self, maker):
        self.maker, self.seconds = maker, 0.0

    def __call__(self, batch, indices, g):
        t = time.perf_counter()
        out = self.maker(batch, indices, g)
        self.seconds += time.perf_counter() - t
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", default="cats-vs-dogs")
    ap.add_argument("--root", default="../shared/data/cats-vs-dogs")
    ap.add_argument("--side", type=int, default=64)
    ap.add_argument("--images", type=int, default=512, help="subset size (evenly spread)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2, help="processes for the cold fill")
    ap.add_argument("--repeats", type=int, default=2, help="epochs per policy (alternating)")
    ap.add_argument("--policy", default="sgd+default", help="saliency policy to compare")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    store = open_store(args.source, args.root, side=args.side, progress=False)
    pick = np.linspace(0, len(store) - 1, min(args.images, len(store))).round().astype(int)
    sub = dataclasses.replace(
        store,
        images=np.ascontiguousarray(store.images[pick]),
        ids=[store.ids[i] for i in pick],
        hashes=[store.hashes[i] for i in pick],
    )
    print(
        f"store {store.root.name}: {len(sub)} of {len(store)} images at {args.side}px; "
        f"batch {args.batch_size}; {torch.get_num_threads()} torch threads"
    )

    with tempfile.TemporaryDirectory(prefix="sslseg-saliency-") as root:
        t0 = time.perf_counter()
        cache, _ = fill_store(sub, 1, workers=args.workers, progress=False, root=root)
        fill_s = time.perf_counter() - t0
        fill_rate = len(cache) / fill_s
        print(
            f"cold fill: {len(cache)} images in {fill_s:.1f} s on {args.workers} processes "
            f"= {fill_rate:.1f} img/s"
        )

        specs = build_method("simclr").view_specs(args.side)
        makers = {
            "default": build_view_maker("default", specs, store=sub),
            args.policy: build_view_maker(
                args.policy, specs, store=sub, progress=False, cache_root=root
            ),
        }
        epoch_s: dict[str, list[float]] = {k: [] for k in makers}
        cpu_s: dict[str, list[float]] = {k: [] for k in makers}
        view_s: dict[str, list[float]] = {k: [] for k in makers}
        for rep in range(args.repeats):
            for name, maker in makers.items():
                torch.manual_seed(0)
                method = build_method("simclr")
                timed = Timed(maker)
                settings = TrainSettings(
                    epochs=1,
                    batch_size=args.batch_size,
                    seed=rep,
                    device="cpu",
                    progress=False,
                    warmup_epochs=0.0,
                )
                cpu0 = time.process_time()
                summary = pretrain(method, sub.images, timed, settings)
                cpu_s[name].append(time.process_time() - cpu0)
                rec = summary["history"][-1]
                epoch_s[name].append(rec["seconds"])
                view_s[name].append(timed.seconds)
                print(
                    f"  repeat {rep + 1} {name:>14}: epoch {rec['seconds']:.2f} s "
                    f"({rec['img_s']:.0f} img/s, {cpu_s[name][-1]:.1f} CPU s), "
                    f"views {timed.seconds:.2f} s, "
                    f"loss {rec['loss']:.3f}"
                )

    base, sal = min(epoch_s["default"]), min(epoch_s[args.policy])
    vb, vs = min(view_s["default"]), min(view_s[args.policy])
    print(
        f"fastest epoch: default {base:.2f} s, {args.policy} {sal:.2f} s; view making "
        f"{vb:.2f} s vs {vs:.2f} s (+{vs - vb:.2f} s = {100 * (vs - vb) / base:.1f}% of the "
        f"default epoch)"
    )
    cb, cs = min(cpu_s["default"]), min(cpu_s[args.policy])
    print(
        f"CPU time (all threads, less sensitive to other load): default {cb:.1f} s, "
        f"{args.policy} {cs:.1f} s = {100 * (cs / cb - 1):+.1f}%"
    )
    print(f"overhead={100 * (sal / base - 1):+.1f}% fill_img_s={fill_rate:.1f}")


if __name__ == "__main__":
    main()
