#!/bin/bash
# Issue 21: segmentation from SaliencyCut pseudo-masks on the shared Pet copy
# (configs/pseudo/pet64.yaml): zero labels, pseudo-mask pretraining + 10/50/100 % of the real
# labels, random init at the same fractions; 3 seeds. A killed run resumes: run it again.
# CARRY (default encoder, the start the first committed numbers were measured with; unet: the
# whole pseudo-only U-Net, outputs with a -unet suffix). THREADS: see pseudo-run.sh.
# Output: docs/results/pseudo-pet64[-unet]-{report.md,results.csv,paired.csv,time.txt},
# docs/figures/pseudo_pet64[_unet]_{iou_vs_fraction,examples}.png
NAME=pet64 BASE=encoder CARRY=${CARRY:-encoder} exec bash "$(dirname "$0")/pseudo-run.sh" "$@"
