#!/bin/bash
# Issue 21 on seed 2's own data: segmentation from SaliencyCut pseudo-masks of the PV01 rooftop
# tiles (configs/pseudo/pv01.yaml: the Roboflow export, PV01 only, a seeded 400 of its images,
# tested on its valid + test tiles): zero labels, pseudo-mask pretraining + 10/50/100 % of the
# real labels, random init at the same fractions; 3 seeds. A killed run resumes: run it again.
# CARRY (default unet): pseudo+real starts from the whole pseudo-only U-Net (encoder: its
# encoder only; outputs then carry an -encoder suffix).
# Output: docs/results/pseudo-pv01-{report.md,results.csv,paired.csv,time.txt},
# docs/figures/pseudo_pv01_{iou_vs_fraction,examples}.png
#
# THREADS (default 1): torch threads per fine-tuning run (see docs/results/pseudo-pet64-run.sh).
set -eu
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-runs/pseudo-pv01}
export THREADS=${THREADS:-1}
CARRY=${CARRY:-unet}
if [ "$CARRY" = unet ]; then R=pseudo-pv01; F=pseudo_pv01; else R=pseudo-pv01-$CARRY; F=pseudo_pv01_$CARRY; fi
s=$(date +%s)
$PY -c 'import os, sys; os.cpu_count = lambda: int(os.environ["THREADS"])
from sslseg.cli import main; sys.exit(main(sys.argv[1:]))' \
    pseudo-label configs/pseudo/pv01.yaml carry=$CARRY out=$OUT progress=false "$@"
echo "pseudo-label wall $(( $(date +%s) - s )) s (THREADS=$THREADS, $(nproc) cores, load" \
    "$(cut -d' ' -f1-3 /proc/loadavg) at the end)" | tee docs/results/$R-time.txt
cp $OUT/report.md docs/results/$R-report.md
cp $OUT/pseudo_labels.csv docs/results/$R-results.csv
cp $OUT/pseudo_labels_paired.csv docs/results/$R-paired.csv
cp $OUT/iou_vs_label_fraction.png docs/figures/${F}_iou_vs_fraction.png
cp $OUT/examples.png docs/figures/${F}_examples.png
