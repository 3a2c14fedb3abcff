#!/bin/bash
# usage: bash docs/results/saliency-curve-run.sh [tuning|heldout]   (no argument: both)
# The speed-quality curve of SaliencyCut over its working side (cut.WORK_SIDE), one process:
# chosen on the tuning set (150 Pet originals) -> saliency-curve-tuning.txt, saliency-curve.csv,
# docs/figures/saliency_curve.png; the same points on the held-out sets for confirmation only
# -> saliency-curve-heldout.txt (the 448 Pet images are <= 256 px and PV01 tiles 256 px, so
# every side >= 256 is their full size there).
cd "$(dirname "$0")/../.."
P=.venv/bin/python
O=../shared/data/oxford-iiit-pet-original
R=../shared/data/oxford-iiit-pet
V=../shared/data/multires-pv/pv01-original
run() { echo "\$ $*"; "$@" 2>/dev/null; }
if [ "$1" != heldout ]; then
{ echo "\$ $P benchmarks/saliency_curve.py --images $O/images --masks $O/annotations/trimaps --variants curve --csv docs/results/saliency-curve.csv --figure docs/figures/saliency_curve.png"
time $P benchmarks/saliency_curve.py --images $O/images --masks $O/annotations/trimaps \
  --variants curve --csv docs/results/saliency-curve.csv \
  --figure docs/figures/saliency_curve.png 2>/dev/null; } > docs/results/saliency-curve-tuning.txt 2>&1
fi
[ "$1" = tuning ] && exit 0
{
  run $P benchmarks/saliency_curve.py --images $R/images --masks $R/annotations/trimaps \
    --exclude $O/images --variants curve --only side96 side128 side160 side192 side224 side256
  run $P benchmarks/saliency_curve.py --mask-values nonzero --images $V/images --masks $V/masks \
    --variants curve --only side96 side128 side160 side192 side224 side256
} > docs/results/saliency-curve-heldout.txt
