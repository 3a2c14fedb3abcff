#!/usr/bin/env bash
# Issue 16: benchmarks/pretrain_quality.py for each method at 30 epochs, 64 px, batch 128, on the
# shared CIFAR-10 train images, scored on its test images; run alone on the machine (timed).
# Finished parts (<part>.json) are kept under docs/results/pretrain-quality/<method>/ and copied
# back into the run folder first, so a later session skips them; the log of each method is
# appended to docs/results/pretrain-quality/<method>.txt.
#   bash docs/results/pretrain-quality-run.sh            # all six
#   METHODS="byol swav" bash docs/results/pretrain-quality-run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
OUT=runs/pretrain-quality
KEEP=docs/results/pretrain-quality
EPOCHS=${EPOCHS:-30}
for m in ${METHODS:-simclr moco byol simsiam barlow_twins swav}; do
  mkdir -p "$OUT/$m" "$KEEP/$m"
  for f in "$KEEP/$m"/*.json; do
    [ -e "$f" ] && cp -n "$f" "$OUT/$m/"
  done
  {
    echo "\$ python benchmarks/pretrain_quality.py --method $m --epochs $EPOCHS --precision auto  ($(date -u +%FT%TZ))"
    echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, native bf16: $(grep -q -E 'avx512_bf16|amx_bf16' /proc/cpuinfo && echo yes || echo no)"
    "$PY" -u benchmarks/pretrain_quality.py --method "$m" --epochs "$EPOCHS" --precision auto 2>&1
  } | tee -a "$KEEP/$m.txt"
  cp "$OUT/$m"/*.json "$KEEP/$m/"
done
