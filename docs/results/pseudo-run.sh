#!/bin/bash
# The pseudo-label study of configs/pseudo/$NAME.yaml with its outputs copied under docs/
# (called by pseudo-pet64-run.sh and pseudo-pv01-run.sh, which say what each measures).
#   NAME   pet64 | pv01 (required)
#   CARRY  what pseudo+real takes from the pseudo-only U-Net: unet | encoder; the outputs of
#          the study's own start (BASE, the wrapper's) have no suffix, the other one -$CARRY
#   THREADS (default 1): torch threads per fine-tuning run. finetune sets torch's threads to
#          os.cpu_count(); on a 2-core machine shared with other jobs, one thread trained the
#          64 px U-Net 4x faster than two (10.9 against 2.5 img/s, load ~2.7), so the launcher
#          makes os.cpu_count() return THREADS for this process only.
# Output: docs/results/pseudo-$NAME[-$CARRY]-{report.md,results.csv,paired.csv,time.txt},
# docs/figures/pseudo_$NAME[_$CARRY]_{iou_vs_fraction,examples}.png. A killed run resumes.
set -eu
cd "$(dirname "$0")/../.."
: "${NAME:?set NAME=pet64 or NAME=pv01}" "${CARRY:?}" "${BASE:?}"
PY=${PY:-.venv/bin/python}
OUT=${OUT:-runs/pseudo-$NAME}
export THREADS=${THREADS:-1}
if [ "$CARRY" = "$BASE" ]; then R=pseudo-$NAME; F=pseudo_$NAME; else R=pseudo-$NAME-$CARRY; F=pseudo_${NAME}_$CARRY; fi
s=$(date +%s)
$PY -c 'import os, sys; os.cpu_count = lambda: int(os.environ["THREADS"])
from sslseg.cli import main; sys.exit(main(sys.argv[1:]))' \
    pseudo-label configs/pseudo/$NAME.yaml carry=$CARRY out=$OUT progress=false "$@"
echo "pseudo-label wall $(( $(date +%s) - s )) s (THREADS=$THREADS, $(nproc) cores, load" \
    "$(cut -d' ' -f1-3 /proc/loadavg) at the end)" | tee docs/results/$R-time.txt
cp $OUT/report.md docs/results/$R-report.md
cp $OUT/pseudo_labels.csv docs/results/$R-results.csv
cp $OUT/pseudo_labels_paired.csv docs/results/$R-paired.csv
cp $OUT/iou_vs_label_fraction.png docs/figures/${F}_iou_vs_fraction.png
cp $OUT/examples.png docs/figures/${F}_examples.png
