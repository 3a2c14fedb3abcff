#!/bin/bash
# Issue 21 on seed 2's own data: segmentation from SaliencyCut pseudo-masks of the PV01 rooftop
# tiles (configs/pseudo/pv01.yaml: the Roboflow export, PV01 only, a seeded 400 of its images,
# tested on its valid + test tiles): zero labels, pseudo-mask pretraining + 10/50/100 % of the
# real labels, random init at the same fractions; 3 seeds. A killed run resumes: run it again.
# The SSL row (measured): add encoder=runs/label-curves-pv01-cpu/pretrain/simclr-default-seed0/
# encoder.pt, the seed-0 SimCLR that label-curves-pv01-run.sh pretrains on the PV01 train tiles.
# CARRY (default unet: the whole pseudo-only U-Net; encoder: its encoder only, outputs with an
# -encoder suffix). THREADS: see pseudo-run.sh.
# Output: docs/results/pseudo-pv01-{report.md,results.csv,paired.csv,time.txt},
# docs/figures/pseudo_pv01_{iou_vs_fraction,examples}.png
NAME=pv01 BASE=unet CARRY=${CARRY:-unet} exec bash "$(dirname "$0")/pseudo-run.sh" "$@"
