#!/bin/bash
# Issue 16, item 6: SimCLR (40 epochs at 64 px on Cats-vs-Dogs, one encoder per seed) against
# random init as the U-Net's start on the shared Pet at dev fraction 0.2, 9 seeds, paired
# intervals over seeds (configs/segmentation-payoff.yaml). A killed run resumes: run it again
# (finished pretrainings and cells are reused). The wall line is of the last invocation only, so
# the time file also sums each pretraining's and fine-tuning's own epochs from their log.jsonl
# (docs/results/run_seconds.py).
#   bash docs/results/segmentation-payoff-run.sh [key=value ...]
# Output: docs/results/segmentation-payoff{-report.md,.csv,-time.txt},
# docs/figures/segmentation_payoff.png
set -euo pipefail
cd "$(dirname "$0")/../.."
source docs/results/wall.sh
OUT=${OUT:-runs/segmentation-payoff}
keep_wall "experiment (last invocation)" docs/results/segmentation-payoff-time.txt \
    .venv/bin/sslseg experiment configs/segmentation-payoff.yaml out=$OUT progress=false "$@"
.venv/bin/python docs/results/run_seconds.py $OUT >> docs/results/segmentation-payoff-time.txt
cp $OUT/report.md docs/results/segmentation-payoff-report.md
cp $OUT/results.csv docs/results/segmentation-payoff.csv
cp $OUT/figure41_dev0.2.png docs/figures/segmentation_payoff.png
