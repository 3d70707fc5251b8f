#!/usr/bin/env bash
# One-go GPU check (< 5 min on one H100/H200): dlkit's loop vs a raw loop on ResNet-50 and BERT-base,
# with and without torch.compile (bench/gpu_check.py prints the table), then a 2-process DDP smoke run
# of `dlkit train` when 2 GPUs are present. Usage: bash bench/gpu_check.sh [--dry-run]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
export HF_HUB_OFFLINE=1
timeout 270 "$PY" bench/gpu_check.py "$@"
GPUS=$("$PY" -c "import torch; print(torch.cuda.device_count())")
if [ "$GPUS" -ge 2 ] && [ "${1:-}" != "--dry-run" ]; then
  OUT=$(mktemp -d)
  timeout 120 "$PY" -m torch.distributed.run --standalone --nproc_per_node=2 -m dlkit train \
    vision-classification --out "$OUT/run" train.max_steps=20 report.enabled=false --json > "$OUT/ddp.json"
  echo "DDP smoke (2 processes): ok, $(grep -o '"train_seconds": [0-9.]*' "$OUT/ddp.json")"
else
  echo "DDP smoke: skipped ($GPUS GPU(s) here)"
fi
