#!/bin/bash
# Issue 16, item 6: SimCLR (40 epochs at 64 px on Cats-vs-Dogs, one encoder per seed) against
# random init as the U-Net's start on the shared Pet at dev fraction 0.2, 9 seeds, paired
# intervals over seeds (configs/segmentation-payoff.yaml). A killed run resumes: run it again
# (finished pretrainings and cells are reused). The wall line is of the last invocation only, so
# the time file also sums each pretraining's and fine-tuning's own epochs from their log.jsonl.
#   bash docs/results/segmentation-payoff-run.sh [key=value ...]
# Output: docs/results/segmentation-payoff{-report.md,.csv,-time.txt},
# docs/figures/segmentation_payoff.png
set -euo pipefail
cd "$(dirname "$0")/../.."
source docs/results/wall.sh
OUT=${OUT:-runs/segmentation-payoff}
keep_wall "experiment (last invocation)" docs/results/segmentation-payoff-time.txt \
    .venv/bin/sslseg experiment configs/segmentation-payoff.yaml out=$OUT progress=false "$@"
.venv/bin/python - "$OUT" >> docs/results/segmentation-payoff-time.txt <<'EOF'
import json, statistics, sys
from pathlib import Path

out = Path(sys.argv[1])
for stage, pattern in (("pretraining", "pretrain/*/log.jsonl"), ("fine-tuning", "cells/*/log.jsonl")):
    runs = [[json.loads(r)["seconds"] for r in p.read_text().splitlines()] for p in sorted(out.glob(pattern))]
    epochs = [s for run in runs for s in run]
    print(
        f"{stage}: {len(runs)} runs, {sum(epochs):.0f} s of epochs in all, "
        f"median run {statistics.median(sum(r) for r in runs):.0f} s, "
        f"median epoch {statistics.median(epochs):.1f} s"
    )
EOF
cp $OUT/report.md docs/results/segmentation-payoff-report.md
cp $OUT/results.csv docs/results/segmentation-payoff.csv
cp $OUT/figure41_dev0.2.png docs/figures/segmentation_payoff.png
