#!/bin/bash
# Issue 14: the ten-epoch encoders of the six methods (configs/pretrain/simclr.yaml, seed 0,
# bf16) pretrained WITHOUT the seeded 20% hold-out of Cats-vs-Dogs (the default now), then
# `sslseg evaluate` on that hold-out with a `random` encoder of the same arch and stem
# (ImageNet stem: evaluate's arch/stem auto now match the exported encoders).
# Output: docs/results/methods10-matched-evaluate.csv (summary.csv of the evaluation) and
# docs/results/methods10-matched-log.txt (wall times).
set -u
cd "$(dirname "$0")/../.."
SSLSEG=${SSLSEG:-.venv/bin/sslseg}
OUT=${OUT:-runs/methods10-matched}
for m in simclr moco byol simsiam swav barlow_twins; do
  s=$(date +%s)
  $SSLSEG pretrain configs/pretrain/simclr.yaml method=$m temperature=null \
      out=$OUT/$m progress=false
  echo "$m pretrain wall $(( $(date +%s) - s )) s"
done
enc=""
for m in simclr moco byol simsiam swav barlow_twins; do enc="$enc --encoder $OUT/$m/encoder.pt"; done
s=$(date +%s)
$SSLSEG evaluate $enc --encoder random --source cats-vs-dogs \
    --root ../shared/data/cats-vs-dogs --side 64 --out $OUT/evaluate --no-tsne \
    'fractions=[0.1,1.0]' progress=false
echo "evaluate wall $(( $(date +%s) - s )) s"
cp $OUT/evaluate/summary.csv docs/results/methods10-matched-evaluate.csv
echo ALL DONE
