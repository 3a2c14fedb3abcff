#!/bin/bash
# Issue 5 follow-up: the five other methods at the budget of issue 7's SimCLR run, then
# kNN / linear on Cats-vs-Dogs and U-Net fine-tuning at dev 0.2, all in bf16 (auto).
set -u
cd "$(dirname "$0")/../.."
while pgrep -f "sslseg label-curves" >/dev/null; do sleep 10; done
for m in moco byol simsiam swav barlow_twins; do
  s=$(date +%s)
  .venv/bin/sslseg pretrain configs/pretrain/simclr.yaml method=$m temperature=null \
      out=runs/methods10/$m progress=false
  echo "$m pretrain wall $(( $(date +%s) - s )) s"
done
cp -r runs/simclr_cvd64_e10_bf16/. runs/methods10/simclr 2>/dev/null || true
enc=""
for m in simclr moco byol simsiam swav barlow_twins; do enc="$enc --encoder runs/methods10/$m/encoder.pt"; done
s=$(date +%s)
.venv/bin/sslseg evaluate $enc --encoder random --source cats-vs-dogs \
    --root ../shared/data/cats-vs-dogs --side 64 --out runs/methods10/evaluate --no-tsne \
    'fractions=[0.1,1.0]' progress=false
echo "evaluate wall $(( $(date +%s) - s )) s"
for m in random simclr moco byol simsiam swav barlow_twins; do
  e=runs/methods10/$m/encoder.pt; [ $m = random ] && e=random
  s=$(date +%s)
  .venv/bin/sslseg finetune configs/finetune.yaml dev_fraction=0.2 encoder=$e \
      out=runs/methods10/ft-$m --quiet 2>/dev/null || \
  .venv/bin/sslseg finetune configs/finetune.yaml dev_fraction=0.2 encoder=$e out=runs/methods10/ft-$m
  echo "$m finetune wall $(( $(date +%s) - s )) s"
done
echo ALL DONE
