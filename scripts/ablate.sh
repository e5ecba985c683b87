#!/usr/bin/env bash
# The ablation rows of the paper's Table 2, each trained the same way at CPU scale
# (presets $PRESET-stage0 then $PRESET-stage2; about 17 min a row on 2 cores, evaluation
# included) and measured at the checkpoint's inference settings on DAVIS-2016 dev-val and,
# when SETS names it, the 3-object composite clips (scripts/make_composite_clips.py).
# Re-running resumes.
# usage: [PRESET=ablation-cpu|ablation-gen] [SETS="devval composite"] \
#        scripts/ablate.sh [OUT_DIR] [ROW ...]   rows: static local global both both-aspp
set -euo pipefail
LGDK=${LGDK:-.venv/bin/lgdk}
PY=${PY:-.venv/bin/python}
PRESET=${PRESET:-ablation-cpu}
SETS=${SETS:-devval}
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

data_of() {  # measured set -> data folder
  case "$1" in
    devval) echo "${DATA:-../shared/data/davis2016/dev-val}" ;;
    composite)
      [ -d out/composite ] || "$PY" scripts/make_composite_clips.py --out out/composite >&2
      echo out/composite ;;
    *) echo "unknown set '$1' (sets: devval composite)" >&2; exit 2 ;;
  esac
}

train_stage() {  # preset, run folder, --set arguments...
  local preset=$1 dir=$2; shift 2
  if [ -f "$dir/final.safetensors" ]; then return; fi
  local resume=(); [ -f "$dir/last.state.pt" ] && resume=(--resume)
  local sets=(); for s in "$@"; do sets+=(--set "$s"); done
  "$LGDK" train --config "$preset" --out "$dir" --no-progress "${resume[@]}" "${sets[@]}"
}

measure() {  # row, set -> $OUT/<row>[-<set>].json
  local row=$1 set=$2 data name=$1
  [ "$set" = devval ] || name=$row-$set
  [ -f "$OUT/$name.json" ] && return
  data=$(data_of "$set")
  rm -rf "$OUT/$name-pred"
  "$LGDK" segment --dataset "$data" --out "$OUT/$name-pred" --no-progress \
    --checkpoint "$OUT/$row-stage2/final.safetensors" --top-k 20
  "$LGDK" eval --pred "$OUT/$name-pred" --gt "$data/Annotations" --json "$OUT/$name.json.tmp"
  mv "$OUT/$name.json.tmp" "$OUT/$name.json"
}

for row in "${ROWS[@]}"; do
  read -r -a sw <<< "$(switches "$row")"
  train_stage "$PRESET-stage0" "$OUT/$row-stage0" "${sw[@]}"
  train_stage "$PRESET-stage2" "$OUT/$row-stage2" "${sw[@]}" \
    "train.init_from=$OUT/$row-stage0/final.safetensors"
  for set in $SETS; do measure "$row" "$set"; done
done
"$PY" - "$OUT" "$SETS" "${ROWS[@]}" <<'PY'
import json, sys
out, sets, rows = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
for s in sets:
    print(f"{s}:\n{'row':<10} {'J&F':>6} {'J':>6} {'F':>6}")
    for row in rows:
        r = json.load(open(f"{out}/{row}{'' if s == 'devval' else '-' + s}.json"))
        print(f"{row:<10} {r['J&F-Mean']:6.3f} {r['J-Mean']:6.3f} {r['F-Mean']:6.3f}")
PY
