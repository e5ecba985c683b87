#!/usr/bin/env bash
# The ablation rows of the paper's Table 2, each trained the same way at CPU scale
# (presets ablation-cpu-stage0 then ablation-cpu-stage2; about 17 min a row on 2 cores,
# evaluation included) and measured on DAVIS-2016 dev-val at the shipped model's settings
# (top-k 20: training checkpoints keep the dense read). Re-running resumes.
# usage: scripts/ablate.sh [OUT_DIR] [ROW ...]   rows: static local global both both-aspp
set -euo pipefail
LGDK=${LGDK:-.venv/bin/lgdk}
DATA=${DATA:-../shared/data/davis2016/dev-val}
OUT=${1:-runs/ablation}; shift || true
ROWS=("$@"); [ ${#ROWS[@]} -gt 0 ] || ROWS=(static local global both both-aspp)

switches() {  # row -> --set arguments
  case "$1" in
    static) echo "model.local_kernel=false model.global_kernel=false model.aspp=false" ;;
    local) echo "model.local_kernel=true model.global_kernel=false model.aspp=false" ;;
    global) echo "model.local_kernel=false model.global_kernel=true model.aspp=false" ;;
    both) echo "model.local_kernel=true model.global_kernel=true model.aspp=false" ;;
    both-aspp) echo "model.local_kernel=true model.global_kernel=true model.aspp=true" ;;
    *) echo "unknown row '$1' (rows: static local global both both-aspp)" >&2; exit 2 ;;
  esac
}

train_stage() {  # preset, run folder, --set arguments...
  local preset=$1 dir=$2; shift 2
  if [ -f "$dir/final.safetensors" ]; then return; fi
  local resume=(); [ -f "$dir/last.state.pt" ] && resume=(--resume)
  local sets=(); for s in "$@"; do sets+=(--set "$s"); done
  "$LGDK" train --config "$preset" --out "$dir" --no-progress "${resume[@]}" "${sets[@]}"
}

for row in "${ROWS[@]}"; do
  read -r -a sw <<< "$(switches "$row")"
  train_stage ablation-cpu-stage0 "$OUT/$row-stage0" "${sw[@]}"
  train_stage ablation-cpu-stage2 "$OUT/$row-stage2" "${sw[@]}" \
    "train.init_from=$OUT/$row-stage0/final.safetensors"
  if [ ! -f "$OUT/$row.json" ]; then
    rm -rf "$OUT/$row-pred"
    "$LGDK" segment --dataset "$DATA" --out "$OUT/$row-pred" --no-progress \
      --checkpoint "$OUT/$row-stage2/final.safetensors" --top-k 20
    "$LGDK" eval --pred "$OUT/$row-pred" --gt "$DATA/Annotations" --json "$OUT/$row.json.tmp"
    mv "$OUT/$row.json.tmp" "$OUT/$row.json"
  fi
done
python3 - "$OUT" "${ROWS[@]}" <<'PY'
import json, sys
out, rows = sys.argv[1], sys.argv[2:]
print(f"{'row':<10} {'J&F':>6} {'J':>6} {'F':>6}")
for row in rows:
    r = json.load(open(f"{out}/{row}.json"))
    print(f"{row:<10} {r['J&F-Mean']:6.3f} {r['J-Mean']:6.3f} {r['F-Mean']:6.3f}")
PY
