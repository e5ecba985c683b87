#!/usr/bin/env bash
# J&F of one model and setting at several processing sizes on the real development videos:
# DAVIS-2016 dev-val (10 single-object sequences) and DAVIS-2017 dogs-jump (3 objects,
# every frame annotated, from its mp4 and first-frame mask), as the speed issue asks of
# every change that is not exact ("within 0.005 J&F at 384 and 480").
# usage: scripts/eval_scales.sh NAME [SIZES] [extra lgdk segment args, e.g. --checkpoint C]
# SIZES: comma-separated, default 384,480. Writes out/scales/NAME/<set>-<size>.txt and
# prints one line per set and size.
set -euo pipefail
LGDK=${LGDK:-.venv/bin/lgdk}
NAME=$1; shift
SIZES=${1:-384,480}; shift || true
OUT=out/scales/$NAME
DEVVAL=../shared/data/davis2016/dev-val
DOGS=../shared/data/davis2017/dogs-jump
mkdir -p "$OUT"
for size in ${SIZES//,/ }; do
  rm -rf "$OUT/pred-devval-$size" "$OUT/pred-dogs-$size"
  "$LGDK" segment --dataset "$DEVVAL" --out "$OUT/pred-devval-$size" --size "$size" \
    --no-progress "$@" > /dev/null
  "$LGDK" eval --pred "$OUT/pred-devval-$size" --gt "$DEVVAL/Annotations" \
    > "$OUT/devval-$size.txt" 2>/dev/null
  "$LGDK" segment "$DOGS/dogs-jump.mp4" --mask "$DOGS/Annotations/00000.png" \
    --out "$OUT/pred-dogs-$size/dogs-jump" --size "$size" --no-progress "$@" > /dev/null
  mkdir -p "$OUT/gt-dogs" && ln -sfn "$(realpath "$DOGS/Annotations")" "$OUT/gt-dogs/dogs-jump"
  "$LGDK" eval --pred "$OUT/pred-dogs-$size" --gt "$OUT/gt-dogs" \
    > "$OUT/dogs-$size.txt" 2>/dev/null
  for set in devval dogs; do
    echo "$NAME $set size $size: $(grep 'J&F-Mean' "$OUT/$set-$size.txt")"
  done
done
