#!/bin/bash
# Every throughput benchmark on CUDA (fp32 and bf16, channels_last, equal precision on both
# sides), in one short run (< 8 minutes on one GPU). Prints the benchmarks' own lines.
#   bash benchmarks/gpu.sh [python]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-.venv/bin/python}
$PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())"
$PY benchmarks/pretrain_throughput.py --device cuda --steps 30 --warmup 5 --repeats 3 --workers 8
$PY benchmarks/finetune_throughput.py --device cuda --steps 30 --warmup 5 --repeats 3 --workers 8
