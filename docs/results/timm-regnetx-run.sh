#!/bin/bash
# A timm backbone end to end on the shared data, at a 2-core CPU budget (one seed):
# SimCLR on a timm RegNetX-200MF (regnetx_002) over the 6,000 Cats-vs-Dogs images at 64 px,
# 5 epochs, exported in timm format; then U-Nets on smp's tu-regnetx_002 encoder on the shared
# Oxford-IIIT Pet (64 px, dev 0.2, 10 epochs), from random init and from the SimCLR encoder,
# the same split and seed, tested on the held-out Pet test images.
#   bash docs/results/timm-regnetx-run.sh   (from the repository root)
set -euo pipefail
OUT=${OUT:-runs/timm-regnetx}
LOG=docs/results/timm-regnetx.txt
D=../shared/data
: > $LOG
/usr/bin/time -f "pretrain wall_s=%e" .venv/bin/sslseg pretrain method=simclr arch=regnetx_002 \
    source=cats-vs-dogs root=$D/cats-vs-dogs side=64 epochs=5 batch_size=128 \
    out=$OUT/simclr tensorboard=true progress=false 2>&1 | tee -a $LOG
tail -n 1 $OUT/simclr/log.jsonl >> $LOG
for ENC in random simclr; do
    SPEC=random; [ $ENC = simclr ] && SPEC=$OUT/simclr/encoder.pt
    /usr/bin/time -f "finetune-$ENC wall_s=%e" .venv/bin/sslseg finetune source=oxford-pet \
        root=$D/oxford-iiit-pet side=64 arch=regnetx_002 encoder=$SPEC dev_fraction=0.2 \
        epochs=10 batch_size=16 seed=0 out=$OUT/unet-$ENC tensorboard=true progress=false \
        2>&1 | tee -a $LOG
done
cp $OUT/unet-simclr/predictions.png docs/figures/timm_regnetx_unet_simclr.png
cp $OUT/unet-simclr/curves.png docs/figures/timm_regnetx_unet_simclr_curves.png
.venv/bin/python docs/results/timm-regnetx-check.py $OUT | tee -a $LOG
