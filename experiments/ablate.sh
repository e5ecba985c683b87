#!/usr/bin/env bash
# The ablation rows of the paper's Table 2, each trained the same way at CPU scale
# (presets $PRESET-stage0 then $PRESET-stage2; on the 2-core AMD EPYC about 17 min a row
# for ablation-cpu, 36 for ablation-gen, evaluation included) and measured at the
# checkpoint's inference settings on DAVIS-2016 dev-val and, when SETS names them, the
# 3-object composite and 7-object crowd clips (scripts/make_composite_clips.py).
# Re-running resumes.
# usage: [PRESET=ablation-cpu|ablation-gen] [SETS="devval composite crowd"] \
#        experiments/ablate.sh [OUT_DIR] [ROW ...]   rows: static local global both both-aspp
set -euo pipefail
LGDK=${LGDK:-.venv/bin/lgdk}
PY=${PY:-.venv/bin/python}
PRESET=${PRESET:-ablation-cpu}
SETS=${SETS:-devval}
OUT=${1:-runs/ablation}; shift || true
ROWS=("$@"); [ ${#ROWS[@]} -gt 0 ] || ROWS=(static local global both both-aspp)
# shellcheck source=experiments/ablation_lib.sh
source "$(dirname "$0")/ablation_lib.sh"

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

for row in "${ROWS[@]}"; do
  read -r -a sw <<< "$(switches "$row")"
  train_stage "$PRESET-stage0" "$OUT/$row-stage0" "${sw[@]}"
  train_stage "$PRESET-stage2" "$OUT/$row-stage2" "${sw[@]}" \
    "train.init_from=$OUT/$row-stage0/final.safetensors"
  for set in $SETS; do measure "$row" "$set" "$OUT/$row-stage2/final.safetensors"; done
done
print_table "$SETS" "${ROWS[@]}"
