#!/bin/bash
# Issue 22: seed 2's Pix2Pix proxy of SaliencyCut (section 3.3.1, Fig. 6) against the hashed
# cache and SaliencyCut computed online, on the shared Pet images at 64 px (2-core CPU budget):
#   1. sslseg pix2pix configs/pix2pix/pet64.yaml (478 images learnt, 120 held out; 40 epochs)
#   2. benchmarks/pix2pix_proxy.py: fidelity on the 120 held-out images, SimCLR epoch time per
#      painter, SimCLR 12 epochs x 3 seeds per painter -> kNN on the held-out breeds
#   bash docs/results/pix2pix-proxy-run.sh   (from the repository root; a killed run resumes)
set -euo pipefail
PY=${PY:-.venv/bin/python}
OUT=runs/pix2pix-proxy
s=$(date +%s)
.venv/bin/sslseg pix2pix configs/pix2pix/pet64.yaml progress=false 2>&1 | tail -n 1 \
    | tee docs/results/pix2pix-pet64-train.txt  # a finished run only says so
cp $OUT/generator/log.jsonl docs/results/pix2pix-pet64-log.jsonl
$PY -c "import json, sys
log = [json.loads(line) for line in open(sys.argv[1])]
print(f'epochs={len(log)} train_seconds={sum(r[\"seconds\"] for r in log):.1f}',
      f'final_held_l1={log[-1][\"held_l1\"]} final_held_boundary_f={log[-1][\"held_boundary_f\"]}')" \
    $OUT/generator/log.jsonl | tee -a docs/results/pix2pix-pet64-train.txt
$PY -c "import json, sys; from pathlib import Path
from sslseg.augment.figures import plot_pix2pix_curves
log = [json.loads(l) for l in Path(sys.argv[1]).read_text().splitlines()]
plot_pix2pix_curves(log, Path(sys.argv[2]))" $OUT/generator/log.jsonl \
    docs/figures/pix2pix_pet64_curves.png
cp $OUT/generator/pix2pix_examples.png docs/figures/pix2pix_pet64_examples.png
$PY benchmarks/pix2pix_proxy.py --out $OUT --seeds 0 1 2 --ssl-epochs 12 "$@" 2>&1 \
    | grep -v -i "warning" | tee docs/results/pix2pix-proxy.txt
echo "wall $(( $(date +%s) - s )) s ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg) at the end)" \
    | tee -a docs/results/pix2pix-proxy.txt
