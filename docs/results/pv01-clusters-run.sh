#!/bin/bash
# Issue 19, item 5 (Fig. 7 on PV): k-means + t-SNE of frozen ResNet-18 features of the 80
# original PV01 tiles, scored (NMI / ARI) against each tile's roof category from its mask code
# (configs/evaluate/pv01-clusters.yaml: 211 flat-concrete, 213 brick; the all-zero mask left
# out, so 79 tiles, k = 2).
#   (a) SimCLR (configs/pretrain/simclr.yaml: ResNet-18, ImageNet stem, 64 px, batch 128, seed
#       0) for EPOCHS (default 10) epochs on the PV01 tiles of the Roboflow export's train/
#       folder (the layout's own split: pretraining reads train/ only), EXCLUDING every
#       augmented copy of the tiles whose stem is in pv01-original (exclude_like: 56 of the 80
#       are in train/ under the same stem), so the encoder never saw the tiles it clusters:
#       1,181 of the 1,348 train images. A 2-core-CPU budget: about 10 x 1,181 images at
#       ~90-145 img/s (docs/results/pretrain-throughput.txt), a few minutes.
#   (b) sslseg evaluate with encoders [random, that encoder] (the same arch and stem).
# Output: docs/results/pv01-clusters.txt (the summary lines with NMI / ARI, then summary.csv)
# and docs/figures/pv01_tsne_<encoder>.png.
#   bash docs/results/pv01-clusters-run.sh   (from anywhere; STEP=b runs (b) alone, with the
#   encoder of an earlier (a) when there is one; OUT, TXT, FIGURES move the outputs)
set -euo pipefail
cd "$(dirname "$0")/../.."
SSLSEG=${SSLSEG:-.venv/bin/sslseg}
OUT=${OUT:-runs/pv01-clusters}
EPOCHS=${EPOCHS:-10}
STEP=${STEP:-ab}
TXT=${TXT:-docs/results/pv01-clusters.txt}
FIGURES=${FIGURES:-docs/figures}
PV=../shared/data/multires-pv
ENCODERS="random"
if [[ $STEP == *a* ]]; then
  s=$(date +%s)
  $SSLSEG pretrain configs/pretrain/simclr.yaml source=seg-folder root=$PV/roboflow \
      "source_options={foreground: nonzero, include: 'PV01_*', exclude_like: $PV/pv01-original}" \
      epochs=$EPOCHS out=$OUT/simclr progress=false
  mkdir -p $OUT
  echo "simclr pretrain wall $(( $(date +%s) - s )) s ($(nproc) cores, load" \
      "$(cut -d' ' -f1-3 /proc/loadavg))" | tee $OUT/pretrain-wall.txt
fi
if [[ -f $OUT/simclr/encoder.pt ]]; then ENCODERS="random,$OUT/simclr/encoder.pt"; fi
s=$(date +%s)
$SSLSEG evaluate configs/evaluate/pv01-clusters.yaml "encoders=[$ENCODERS]" \
    out=$OUT/evaluate 2>&1 | tee "$TXT"
echo "evaluate wall $(( $(date +%s) - s )) s" | tee -a "$TXT"
cat $OUT/evaluate/summary.csv >> "$TXT"
tail -n 1 $OUT/simclr/log.jsonl >> "$TXT" 2>/dev/null || true
cat $OUT/pretrain-wall.txt >> "$TXT" 2>/dev/null || true
for png in $OUT/evaluate/tsne_*.png; do
  name=$(basename "$png" .png)
  cp "$png" "$FIGURES/pv01_${name}.png"
done
