# Shared steps of the ablation scripts (experiments/ablate.sh, experiments/ablate_data.sh):
# train a preset into a run folder (resuming), measure a checkpoint on a set, print a table.
# Sourced; the caller sets LGDK, PY and OUT.

data_of() {  # measured set -> data folder
  case "$1" in
    devval) echo "${DATA:-../shared/data/davis2016/dev-val}" ;;
    composite|crowd)
      local flag=(); [ "$1" = crowd ] && flag=(--crowd)
      [ -d "out/$1" ] || "$PY" scripts/make_composite_clips.py "${flag[@]}" --out "out/$1" >&2
      echo "out/$1" ;;
    *) echo "unknown set '$1' (sets: devval composite crowd)" >&2; exit 2 ;;
  esac
}

train_stage() {  # preset, run folder, --set arguments...
  local preset=$1 dir=$2; shift 2
  if [ -f "$dir/final.safetensors" ]; then return; fi
  local resume=(); [ -f "$dir/last.state.pt" ] && resume=(--resume)
  local sets=(); for s in "$@"; do sets+=(--set "$s"); done
  "$LGDK" train --config "experiments/presets/$preset.yaml" --out "$dir" --no-progress "${resume[@]}" "${sets[@]}"
}

measure() {  # row, set, checkpoint, [lgdk segment arguments...] -> $OUT/<row>[-<set>].json
  local row=$1 set=$2 checkpoint=$3 data name=$1
  shift 3
  [ "$set" = devval ] || name=$row-$set
  [ -f "$OUT/$name.json" ] && return
  data=$(data_of "$set")
  rm -rf "$OUT/$name-pred"
  "$LGDK" segment --dataset "$data" --out "$OUT/$name-pred" --no-progress \
    --checkpoint "$checkpoint" --top-k 20 "$@"
  "$LGDK" eval --pred "$OUT/$name-pred" --gt "$data/Annotations" --json "$OUT/$name.json.tmp"
  mv "$OUT/$name.json.tmp" "$OUT/$name.json"
}

print_table() {  # sets (one word list), rows...
  "$PY" - "$OUT" "$@" <<'PY'
import json, sys
out, sets, rows = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
for s in sets:
    print(f"{s}:\n{'row':<10} {'J&F':>6} {'J':>6} {'F':>6}")
    for row in rows:
        r = json.load(open(f"{out}/{row}{'' if s == 'devval' else '-' + s}.json"))
        print(f"{row:<10} {r['J&F-Mean']:6.3f} {r['J-Mean']:6.3f} {r['F-Mean']:6.3f}")
PY
}
