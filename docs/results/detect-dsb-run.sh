#!/bin/bash
# Issue 19: Mask R-CNN mask AP on the DSB 2018 nuclei (538 images, 16-bit instance maps), random
# init against one SSL encoder, at a 2-core CPU budget: configs/detect/dsb-nuclei.yaml at 128 px
# (min_area 4 px there), ResNet-18 + FPN, 4 epochs on a seeded half of the training images
# (1.0 img/s on 2 cores: a full epoch of the 387 takes 386 s), seed 0's seeded split (80 %
# development, 20 % test; 10 % of development validates).
# The SSL encoder: SimCLR pretrained on the same images at 128 px (batch 64, lr 0.03, 40 epochs)
# without seed 0's test images (pretrain's hold-out; detect refuses an encoder that saw them).
#   bash docs/results/detect-dsb-run.sh   (from the repository root; a killed run resumes)
# Output: docs/results/detect-dsb.txt, docs/figures/detect_dsb_{random,simclr}.png
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-runs/detect-dsb}
DATA=(source=seg-folder root=../shared/data/dsb2018-nuclei
      "source_options={masks: instances, foreground: nonzero}")
OUT=docs/results/detect-dsb.txt
# wall time of each step, kept beside its run by the invocation that ran it (a rerun reuses
# finished steps and keeps their times)
timed() {
    local name=$1; shift
    if [ ! -f $RUNS/$name.wall_s ]; then
        local t=$(date +%s)
        "$@" > /dev/null
        echo $(( $(date +%s) - t )) > $RUNS/$name.wall_s
    fi
}
mkdir -p $RUNS
timed pretrain .venv/bin/sslseg pretrain configs/pretrain/simclr.yaml "${DATA[@]}" side=128 \
    batch_size=64 lr=0.03 epochs=40 seed=0 out=$RUNS/pretrain progress=false
for enc in random simclr; do
    e=$enc; [ $enc = simclr ] && e=$RUNS/pretrain/encoder.pt
    timed $enc .venv/bin/sslseg detect configs/detect/dsb-nuclei.yaml side=128 min_area=4 \
        epochs=4 seed=0 train_fraction=0.5 encoder=$e out=$RUNS/$enc progress=false
    cp $RUNS/$enc/instances.png docs/figures/detect_dsb_$enc.png
done
{
    echo "# bash docs/results/detect-dsb-run.sh ($(nproc) cores; pretraining $(cat $RUNS/pretrain.wall_s) s)"
    for enc in random simclr; do
        results=$(.venv/bin/python -c "import json, sys; print(json.dumps(json.load(open(sys.argv[1]))))" \
            $RUNS/$enc/results.json)
        echo "encoder=$enc wall_s=$(cat $RUNS/$enc.wall_s) results=$results"
        sed "s/^/  log: /" $RUNS/$enc/log.jsonl
    done
    .venv/bin/python - "$RUNS" <<'EOF'
import json, sys
runs = sys.argv[1]
r, s = (json.load(open(f"{runs}/{e}/results.json")) for e in ("random", "simclr"))
for key in ("mask_ap", "mask_ap50", "box_ap", "union_iou"):
    print(f"{key}_random={r[key]:.4f} {key}_simclr={s[key]:.4f} delta={s[key] - r[key]:+.4f}")
# one seed: the union-mask IoU difference gets a paired bootstrap over the test images,
# conditional on these two training runs (docs/statistics.md); AP gets no interval
import numpy as np
from sslseg.experiments.stats import paired_iou_difference
counts = [np.genfromtxt(f"{runs}/{e}/test_per_image.csv", delimiter=",", names=True, dtype=None,
                        encoding=None) for e in ("simclr", "random")]
d = paired_iou_difference(*([{k: c[k] for k in ("tp", "fp", "fn")}] for c in counts))
print(f"union_iou_delta={d.mean:+.4f} interval_95=[{d.low:+.4f}, {d.high:+.4f}] p={d.p_value:.3f} "
      f"basis={d.basis} test_images={len(counts[0])}")
EOF
} | tee $OUT
