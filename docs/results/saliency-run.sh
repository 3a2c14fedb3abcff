#!/bin/bash
# usage: bash docs/results/saliency-run.sh; runs speed + quality on the three sets, one process each
cd "$(dirname "$0")/../.."
P=.venv/bin/python
O=../shared/data/oxford-iiit-pet-original
R=../shared/data/oxford-iiit-pet
V=../shared/data/multires-pv/pv01-original
run() { echo "\$ $*"; "$@" 2>/dev/null | grep -v "^warm-up"; }
run $P benchmarks/saliency_speed.py --images $O/images --repeats 2
run $P benchmarks/saliency_quality.py --images $O/images --masks $O/annotations/trimaps
run $P benchmarks/saliency_quality.py --images $O/images --masks $O/annotations/trimaps --trimap-border fg
run $P benchmarks/saliency_quality.py --images $R/images --masks $R/annotations/trimaps --exclude $O/images
run $P benchmarks/saliency_quality.py --images $R/images --masks $R/annotations/trimaps --exclude $O/images --trimap-border fg
run $P benchmarks/saliency_quality.py --mask-values nonzero --images $V/images --masks $V/masks
