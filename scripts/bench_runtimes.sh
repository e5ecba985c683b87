#!/usr/bin/env bash
# The docs/performance.md runtime rows: PyTorch and ONNX Runtime, 480p and 360p, 1 object,
# the shipped model on a generated 854x480 clip. JSON reports go to OUT_DIR.
# usage: scripts/bench_runtimes.sh [OUT_DIR] [FRAMES]
set -euo pipefail
LGDK=${LGDK:-.venv/bin/lgdk}
OUT=${1:-out/bench}; FRAMES=${2:-100}
mkdir -p "$OUT"
for size in 480 360; do
  "$LGDK" export --onnx "$OUT/lgdk-$size.onnx" --frame-size 854x480 --size "$size" >/dev/null
  "$LGDK" bench --size "$size" --frames "$FRAMES" --long "" --json "$OUT/pytorch-$size.json"
  "$LGDK" bench --size "$size" --frames "$FRAMES" --onnx "$OUT/lgdk-$size.onnx" \
    --json "$OUT/onnx-$size.json"
done
