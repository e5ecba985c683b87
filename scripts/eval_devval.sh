#!/usr/bin/env bash
# Measure the shipped model on DAVIS-2016 dev-val (10 sequences, every frame, 480p):
# J&F with and without --flip, and the frames per second of each run.
# usage: scripts/eval_devval.sh [OUT_DIR] [extra lgdk segment args...]
set -euo pipefail
LGDK=${LGDK:-.venv/bin/lgdk}
DATA=${DATA:-../shared/data/davis2016/dev-val}
OUT=${1:-out/devval}; shift || true
for mode in default flip; do
  args=(); [ "$mode" = flip ] && args=(--flip)
  rm -rf "$OUT/$mode"
  start=$(date +%s.%N)
  "$LGDK" segment --dataset "$DATA" --out "$OUT/$mode" --no-progress "${args[@]}" "$@"
  end=$(date +%s.%N)
  frames=$(find "$OUT/$mode" -name '*.png' | wc -l)
  "$LGDK" eval --pred "$OUT/$mode" --gt "$DATA/Annotations" --json "$OUT/$mode.json"
  python3 -c "print(f'$mode: {$frames} frames in {$end - $start:.0f} s = {$frames / ($end - $start):.2f} frames/s (model loading included)')"
done
