#!/bin/bash
# Issue 19, item 4 (seed 003's Fig. 10 on PV01) in mask AP, at the 2-core CPU budget of
# configs/label-curves/pv01-fig10-maskrcnn-cpu.yaml: Mask R-CNN test mask AP on the 194 PV01
# valid + test tiles against 10 / 25 / 100 % of the train tiles, lines random init and SimCLR
# under the policies default and sgd (pretrained per seed on the train tiles, 15 epochs at
# 64 px), 3 seeds.
# A killed run resumes: run it again (finished cells and encoders are reused). The wall line is
# of the last invocation only, so the time file also sums every run's epoch seconds
# (docs/results/run_seconds.py).
#   bash docs/results/label-curves-pv01-maskrcnn-run.sh [key=value ...]
# Output: docs/results/label-curves-pv01-maskrcnn{.csv,-paired.csv,-report.md,-time.txt},
# docs/figures/label_curves_pv01_maskrcnn.png
set -euo pipefail
cd "$(dirname "$0")/../.."
source docs/results/wall.sh
OUT=${OUT:-runs/label-curves-pv01-maskrcnn-cpu}
keep_wall label-curves docs/results/label-curves-pv01-maskrcnn-time.txt \
    .venv/bin/sslseg label-curves configs/label-curves/pv01-fig10-maskrcnn-cpu.yaml out=$OUT progress=false "$@"
.venv/bin/python docs/results/run_seconds.py $OUT >> docs/results/label-curves-pv01-maskrcnn-time.txt
cp $OUT/label_curves.csv docs/results/label-curves-pv01-maskrcnn.csv
cp $OUT/label_curves_paired.csv docs/results/label-curves-pv01-maskrcnn-paired.csv
cp $OUT/report.md docs/results/label-curves-pv01-maskrcnn-report.md
cp $OUT/label_curves.png docs/figures/label_curves_pv01_maskrcnn.png
