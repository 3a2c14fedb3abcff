#!/bin/bash
# Issue 16, item 5 (seed 003's Fig. 11, section 3.4.3) at the 2-core CPU budget of
# configs/linear-curves/cifar10-fig11.yaml: SimCLR pretrained per seed on the 5,230 shared
# CIFAR-10 train images under the policies default, sgd+default and sgd (15 epochs at 64 px)
# against random init; kNN and the linear probe at 10-100 % of the train labels, scored on the
# 870 test images, 3 seeds, paired intervals over seeds.
# A killed run resumes: run it again (finished pretrainings and evaluations are reused).
#   bash docs/results/linear-curves-fig11-run.sh [key=value ...]
# Output: docs/results/linear-curves-fig11{.csv,-paired.csv,-report.md,-time.txt},
# docs/figures/linear_curves_fig11.png
set -euo pipefail
cd "$(dirname "$0")/../.."
source docs/results/wall.sh
OUT=${OUT:-runs/linear-curves-fig11}
keep_wall linear-curves docs/results/linear-curves-fig11-time.txt \
    .venv/bin/sslseg linear-curves configs/linear-curves/cifar10-fig11.yaml out=$OUT progress=false "$@"
cp $OUT/linear_curves.csv docs/results/linear-curves-fig11.csv
cp $OUT/linear_curves_paired.csv docs/results/linear-curves-fig11-paired.csv
cp $OUT/report.md docs/results/linear-curves-fig11-report.md
cp $OUT/linear_curves.png docs/figures/linear_curves_fig11.png
