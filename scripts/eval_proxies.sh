#!/usr/bin/env bash
# J&F of one model and setting on every proxy for the held-out videos of issue 20:
# DAVIS-2016 dev-val (single object), the 3-object composite clips and the 7-object crowd
# clips made from dev-val (scripts/make_composite_clips.py [--crowd]), and the generated
# 2-object clips (scripts/eval_generated.py, the `lgdk demo` generator).
# usage: scripts/eval_proxies.sh NAME [extra lgdk segment args, e.g. --checkpoint C --window 1]
# Writes out/proxies/NAME/{devval,composite,crowd}.txt and generated.txt.
set -euo pipefail
LGDK=${LGDK:-.venv/bin/lgdk}
PY=${PY:-.venv/bin/python}
NAME=$1; shift
OUT=out/proxies/$NAME
mkdir -p "$OUT"
[ -d out/composite ] || "$PY" scripts/make_composite_clips.py --out out/composite
[ -d out/crowd ] || "$PY" scripts/make_composite_clips.py --crowd --out out/crowd
for set in devval composite crowd; do
  case $set in
    devval) data=../shared/data/davis2016/dev-val ;;
    *) data=out/$set ;;
  esac
  rm -rf "$OUT/pred-$set"
  "$LGDK" segment --dataset "$data" --out "$OUT/pred-$set" --no-progress "$@" > /dev/null
  "$LGDK" eval --pred "$OUT/pred-$set" --gt "$data/Annotations" > "$OUT/$set.txt" 2>/dev/null
  echo "$NAME $set: $(grep J\&F-Mean "$OUT/$set.txt")"
done
gen=()
while [ $# -gt 0 ]; do
  case $1 in
    --checkpoint|--window) gen+=("$1" "$2"); shift 2 ;;
    *) shift ;;
  esac
done
"$PY" scripts/eval_generated.py --encode-every 2 "${gen[@]}" | tee "$OUT/generated.txt"
