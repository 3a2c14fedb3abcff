"""docs/methods.md's table of the six methods at one budget, from the parts that
``bash docs/results/pretrain-quality-run.sh`` keeps under docs/results/pretrain-quality/.

    python docs/results/pretrain-quality-table.py > docs/results/pretrain-quality-table.md

Accuracies in %, on the 870 shared CIFAR-10 test images (kNN k = 200; linear probe on 10 % and
100 % of the 5,230 train labels). ``x`` = wall time of lightly's training epochs over sslseg's
(medians of the epochs, robust to a moment of contention). The published column is lightly's
own CIFAR-10 benchmark table (ResNet-18 CIFAR variant, 200 epochs, batch 128, all 50,000 train
images, one GPU), for scale only: another budget, another stem, ten times the images.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent / "pretrain-quality"
METHODS = ("simclr", "moco", "byol", "simsiam", "swav", "barlow_twins")
# docs.lightly.ai "Benchmarks", CIFAR-10, kNN accuracy, 200 epochs, batch 128
PUBLISHED = {
    "simclr": 84.7,
    "moco": 83.8,
    "byol": 86.9,
    "simsiam": 81.9,
    "swav": 81.2,
    "barlow_twins": 84.2,
}


def part(method: str, name: str) -> dict | None:
    path = HERE / method / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def main() -> None:
    print(
        "| method | epochs | sslseg kNN | lightly kNN | random kNN | sslseg − lightly | "
        "sslseg − random | sslseg linear 10 / 100 % | lightly linear 10 / 100 % | "
        "sslseg s | lightly s | lightly / sslseg epoch | lightly published kNN (200 ep.) |"
    )
    print("|---" * 13 + "|")
    for method in METHODS:
        s, li, r = (part(method, p) for p in ("sslseg", "lightly", "random"))
        if s is None or li is None or r is None:
            print(f"| {method} | not yet run |" + " |" * 11)
            continue
        epochs = json.loads((HERE / method / "settings.json").read_text())["epochs"]
        print(
            f"| {method} | {epochs} | {100 * s['knn']:.1f} | {100 * li['knn']:.1f} | "
            f"{100 * r['knn']:.1f} | {100 * (s['knn'] - li['knn']):+.1f} | "
            f"{100 * (s['knn'] - r['knn']):+.1f} | "
            f"{100 * s['linear_10']:.1f} / {100 * s['linear_100']:.1f} | "
            f"{100 * li['linear_10']:.1f} / {100 * li['linear_100']:.1f} | "
            f"{s['seconds']:.0f} | {li['seconds']:.0f} | "
            f"{li['median_epoch_s'] / s['median_epoch_s']:.2f}x | {PUBLISHED[method]:.1f} |"
        )


if __name__ == "__main__":
    main()
