#!/usr/bin/env bash
# What each data source of the generalizing recipe (issue 20) adds, one at a time: the
# default's part 1 (default-cpu-gen1) shortened to 300 iterations (preset data-ablation),
# from lgdk-lite0-v0 (trained on DAVIS-2016 train only), once per data mix:
#   none    no training: that model itself
#   davis   DAVIS-2016 train clips alone
#   stills  + the real stills of ../shared/data/static as pseudo-videos
#   paste   + multi-object clips pasted from those stills
#   all     + both (the mix of part 1)
# Each row is measured at the checkpoint's inference settings on DAVIS-2016 dev-val and,
# when SETS names them, the 3-object composite and 7-object crowd clips
# (scripts/make_composite_clips.py). About 16.5 min of training and 6 of measuring a row on
# the 2-core AMD EPYC. Resumes.
# usage: [SETS="devval composite crowd"] experiments/ablate_data.sh [OUT_DIR] [ROW ...]
set -euo pipefail
LGDK=${LGDK:-.venv/bin/lgdk}
PY=${PY:-.venv/bin/python}
SETS=${SETS:-devval}
OUT=${1:-runs/ablation-data}; shift || true
ROWS=("$@"); [ ${#ROWS[@]} -gt 0 ] || ROWS=(none davis stills paste all)
INIT=runs/lgdk-lite0-v0.safetensors
# shellcheck source=experiments/ablation_lib.sh
source "$(dirname "$0")/ablation_lib.sh"

switches() {  # row -> --set arguments
  case "$1" in
    davis) echo "data.static_weight=0 data.paste_weight=0" ;;
    stills) echo "data.static_weight=1 data.paste_weight=0" ;;
    paste) echo "data.static_weight=0 data.paste_weight=1" ;;
    all) echo "data.static_weight=1 data.paste_weight=1" ;;
    none) ;;
    *) echo "unknown row '$1' (rows: none davis stills paste all)" >&2; exit 2 ;;
  esac
}

[ -f "$INIT" ] || git show f2e32f1:src/lgdk/weights/default.safetensors > "$INIT"
for row in "${ROWS[@]}"; do
  read -r -a sw <<< "$(switches "$row")"
  checkpoint=$INIT extra=(--window 0.5)  # the trained rows' setting (INIT's is 0)
  if [ "$row" != none ]; then
    train_stage data-ablation "$OUT/$row" "${sw[@]}" "train.init_from=$INIT"
    checkpoint=$OUT/$row/final.safetensors extra=()
  fi
  for set in $SETS; do measure "$row" "$set" "$checkpoint" "${extra[@]}"; done
done
print_table "$SETS" "${ROWS[@]}"
