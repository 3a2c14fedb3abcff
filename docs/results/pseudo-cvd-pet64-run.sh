#!/bin/bash
# Issue 21: pseudo-masks from another image source. SimCLR is pretrained on Cats-vs-Dogs (64 px,
# 20 epochs; no Pet image), then configs/pseudo/cvd-pet64.yaml runs with that encoder as the ssl
# row: zero labels from 1,000 Cats-vs-Dogs SaliencyCut masks, pseudo-mask pretraining + real
# labels, random and SSL init at 10 / 50 / 100 % of the Pet train labels; 3 seeds.
# A killed run resumes: run it again. THREADS: see pseudo-run.sh.
# Output: docs/results/pseudo-cvd-pet64-{report.md,results.csv,paired.csv,time.txt},
# docs/figures/pseudo_cvd-pet64_{iou_vs_fraction,examples}.png
set -eu
cd "$(dirname "$0")/../.."
ENC=${ENC:-runs/simclr-cvd64-e20}
.venv/bin/sslseg pretrain configs/pretrain/simclr.yaml epochs=20 out=$ENC progress=false
NAME=cvd-pet64 BASE=unet CARRY=unet exec bash docs/results/pseudo-run.sh encoder=$ENC/encoder.pt "$@"
