#!/bin/bash
# Mask R-CNN from random init on the PV01 Roboflow tiles at a reduced 2-core CPU budget:
# configs/detect/pv01.yaml (128 px, ResNet-18 + FPN, test = the 194 valid + test tiles) with
# 2 epochs on a quarter of the 451 train tiles (all their augmented copies), one seed.
#   bash docs/results/detect-pv01-run.sh   (from the repository root)
set -euo pipefail
OUT=${OUT:-runs/detect/pv01-random-e2-f25}
/usr/bin/time -f "wall_s=%e" .venv/bin/sslseg detect configs/detect/pv01.yaml epochs=2 \
    train_fraction=0.25 out=$OUT progress=false 2>&1 | tee docs/results/detect-pv01-random.txt
cat $OUT/log.jsonl >> docs/results/detect-pv01-random.txt
cp $OUT/instances.png docs/figures/detect_pv01_random.png
