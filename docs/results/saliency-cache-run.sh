#!/bin/bash
# usage: bash docs/results/saliency-cache-run.sh [tuning|heldout] >> docs/results/saliency-cache-resolution.txt
# Quality at the cache's 64 / 128 px: saliency on the resized image (cache v1) against saliency
# on the source capped at S px, then resized (cache v2, --from-source S). One process each.
# "tuning" picks S (cache.format.SOURCE_SIDE) on the 150 Pet originals; "heldout" then runs the
# chosen S (env S, default 256) on the held-out sets. No argument: both.
cd "$(dirname "$0")/../.."
P=.venv/bin/python
O=../shared/data/oxford-iiit-pet-original
R=../shared/data/oxford-iiit-pet
V=../shared/data/multires-pv/pv01-original
run() { echo "\$ $*"; "$@" 2>/dev/null | grep -v "^warm-up" | tail -2; }
S=${S:-256}
if [ "$1" != heldout ]; then
echo "# tuning set (150 Pet originals): the source side S is chosen here"
for n in 64 128; do
  run $P benchmarks/saliency_quality.py --images $O/images --masks $O/annotations/trimaps --resize $n
  for s in 192 256 320 384 512; do
    run $P benchmarks/saliency_quality.py --images $O/images --masks $O/annotations/trimaps --resize $n --from-source $s
  done
done
fi
[ "$1" = tuning ] && exit 0
echo "# held out (448 other shared Pet images, <= 256 px, so S >= 256 is their full size)"
for n in 64 128; do
  run $P benchmarks/saliency_quality.py --images $R/images --masks $R/annotations/trimaps --exclude $O/images --resize $n --from-source $S
done
echo "# held out (PV01, 80 tiles of 256 px, non-zero mask = panel)"
for n in 64 128; do
  run $P benchmarks/saliency_quality.py --mask-values nonzero --images $V/images --masks $V/masks --resize $n
  run $P benchmarks/saliency_quality.py --mask-values nonzero --images $V/images --masks $V/masks --resize $n --from-source $S
done
