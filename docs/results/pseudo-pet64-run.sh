#!/bin/bash
# Issue 21: segmentation from SaliencyCut pseudo-masks on the shared Pet copy
# (configs/pseudo/pet64.yaml): zero labels, pseudo-mask pretraining + 10/50/100 % of the real
# labels, random init at the same fractions; 3 seeds. A killed run resumes: run it again.
# CARRY (default encoder): what pseudo+real takes from the pseudo-only U-Net. encoder: its
# encoder only, the start the first committed numbers were measured with; unet: all of it
# (the command's default). Outputs of CARRY=unet carry a -unet suffix.
# Output: docs/results/pseudo-pet64[-unet]-{report.md,results.csv,paired.csv,time.txt},
# docs/figures/pseudo_pet64[_unet]_{iou_vs_fraction,examples}.png
#
# THREADS (default 1): torch threads per fine-tuning run. finetune sets torch's threads to
# os.cpu_count(); on this 2-core machine shared with other jobs, one thread trained the 64 px
# U-Net 4x faster than two (10.9 against 2.5 img/s, load ~2.7), so the launcher below makes
# os.cpu_count() return THREADS for this process only (the package has no threads key yet).
set -eu
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-runs/pseudo-pet64}
export THREADS=${THREADS:-1}
CARRY=${CARRY:-encoder}
if [ "$CARRY" = encoder ]; then R=pseudo-pet64; F=pseudo_pet64; else R=pseudo-pet64-$CARRY; F=pseudo_pet64_$CARRY; fi
s=$(date +%s)
$PY -c 'import os, sys; os.cpu_count = lambda: int(os.environ["THREADS"])
from sslseg.cli import main; sys.exit(main(sys.argv[1:]))' \
    pseudo-label configs/pseudo/pet64.yaml carry=$CARRY out=$OUT progress=false "$@"
echo "pseudo-label wall $(( $(date +%s) - s )) s (THREADS=$THREADS, $(nproc) cores, load" \
    "$(cut -d' ' -f1-3 /proc/loadavg) at the end)" | tee docs/results/$R-time.txt
cp $OUT/report.md docs/results/$R-report.md
cp $OUT/pseudo_labels.csv docs/results/$R-results.csv
cp $OUT/pseudo_labels_paired.csv docs/results/$R-paired.csv
cp $OUT/iou_vs_label_fraction.png docs/figures/${F}_iou_vs_fraction.png
cp $OUT/examples.png docs/figures/${F}_examples.png
