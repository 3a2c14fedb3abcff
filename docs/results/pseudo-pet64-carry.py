"""carry=unet against carry=encoder: the pseudo+real cells of the two committed Pet runs.

Both runs share every other cell bit for bit (random init and pseudo-only reproduce exactly), so
per seed and fraction the two pseudo+real IoUs differ only in what the real-label fine-tuning
starts from: the whole pseudo-trained U-Net, or its encoder under a fresh decoder. Paired t over
the 3 seeds (``experiments.stats.paired_iou_difference``).

    .venv/bin/python docs/results/pseudo-pet64-carry.py | tee docs/results/pseudo-pet64-carry.txt
"""

import csv
from pathlib import Path

from sslseg.experiments.stats import paired_iou_difference

HERE = Path(__file__).resolve().parent


def cells(name: str) -> dict[tuple[str, float, int], float]:
    with open(HERE / name) as f:
        return {
            (r["regime"], float(r["train_fraction"]), int(r["seed"])): float(r["iou"])
            for r in csv.DictReader(f)
        }


encoder, unet = cells("pseudo-pet64-results.csv"), cells("pseudo-pet64-unet-results.csv")
same = [k for k in encoder if k[0] != "pseudo+real" and encoder[k] == unet.get(k)]
print(
    f"shared cells equal in both runs: {len(same)} of {sum(k[0] != 'pseudo+real' for k in encoder)}"
)
for fraction in sorted({k[1] for k in encoder if k[0] == "pseudo+real"}):
    seeds = sorted(k[2] for k in encoder if k[:2] == ("pseudo+real", fraction))
    a = [unet[("pseudo+real", fraction, s)] for s in seeds]
    b = [encoder[("pseudo+real", fraction, s)] for s in seeds]
    d = paired_iou_difference(a, b)
    print(
        f"fraction={fraction:g} unet={sum(a) / len(a):.4f} encoder={sum(b) / len(b):.4f} "
        f"diff={d.mean:+.4f} low={d.low:+.4f} high={d.high:+.4f} p={d.p_value:.3f} "
        f"seeds={len(seeds)}"
    )
