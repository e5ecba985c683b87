#!/usr/bin/env bash
# Retrain the shipped default model (about 5 h 20 min on a 2-core CPU). Run from the
# repository root with ../shared/data/davis2016 beside it. Re-running resumes each stage.
set -euo pipefail
LGDK=${LGDK:-.venv/bin/lgdk}
PRESETS=experiments/presets
run_stage() {  # preset of experiments/presets, run folder
  if [ -f "$2/final.safetensors" ]; then echo "$2 done"; return; fi
  if [ -f "$2/last.state.pt" ]; then
    "$LGDK" train --config "$PRESETS/$1.yaml" --out "$2" --resume --no-progress
  else
    "$LGDK" train --config "$PRESETS/$1.yaml" --out "$2" --no-progress
  fi
}
run_stage default-cpu-stage0 runs/default-stage0
run_stage default-cpu-stage2 runs/default-stage2
run_stage default-cpu-stage2-long runs/default-stage2-long
# the cheaper memory encoder (memory_encoder: fast), distilled from that model's own, then
# the whole model fine-tuned briefly (about 40 more minutes)
if [ ! -f runs/default-fast-distill/final.safetensors ]; then
  "${PYTHON:-.venv/bin/python}" scripts/distill_part.py \
    --teacher runs/default-stage2-long/final.safetensors --config $PRESETS/default-cpu-fast.yaml \
    --out runs/default-fast-distill --iterations 1500
fi
run_stage default-cpu-fast-tune runs/default-fast-tune
# lgdk-lite0-v0 (float16), the start of lgdk-lite0-v1's part
if [ ! -f runs/lgdk-lite0-v0.safetensors ]; then
  "${PYTHON:-.venv/bin/python}" scripts/ship_default.py runs/default-fast-tune/final.safetensors \
    --out runs/lgdk-lite0-v0.safetensors --name lgdk-lite0-v0
fi
# real stills (DUTS-TR, ECSSD, Penn-Fudan) as pseudo-videos, multi-object clips pasted from
# them, DAVIS-2016 train clips (about 1 h 50 min)
run_stage default-cpu-gen1 runs/default-gen1
echo "trained: runs/default-gen1/final.safetensors"
echo "ship it: python scripts/ship_default.py runs/default-gen1/final.safetensors"
