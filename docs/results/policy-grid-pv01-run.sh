#!/bin/bash
# Issue 19, item 3 (seed 003's Fig. 9 on PV01) at the 2-core CPU budget of
# configs/policy-grid/pv01-cpu.yaml: SimCLR under the policies default and sgd (each pretrained
# per seed on the 451 PV01 train tiles x 3 copies, unlabelled, 15 epochs at 64 px) against
# random init, fine-tuned as a U-Net (IoU) and as Mask R-CNN (mask AP) and tested on the 194
# valid + test tiles, 3 seeds. A killed run resumes: run it again.
#   bash docs/results/policy-grid-pv01-run.sh [key=value ...]
# Output: docs/results/policy-grid-pv01-{report.md,results.csv,paired.csv,time.txt},
# docs/figures/policy_grid_pv01.png
set -euo pipefail
cd "$(dirname "$0")/../.."
source docs/results/wall.sh
OUT=${OUT:-runs/policy-grid-pv01-cpu}
keep_wall policy-grid docs/results/policy-grid-pv01-time.txt \
    .venv/bin/sslseg policy-grid configs/policy-grid/pv01-cpu.yaml out=$OUT progress=false "$@"
cp $OUT/report.md docs/results/policy-grid-pv01-report.md
cp $OUT/results.csv docs/results/policy-grid-pv01-results.csv
cp $OUT/paired.csv docs/results/policy-grid-pv01-paired.csv
cp $OUT/heatmap.png docs/figures/policy_grid_pv01.png
