"""Frames/s of a real street crowd with 1 to N of its people as objects.

From MOTSChallenge as `../shared/data/mots/prepare.py` writes it (854x480): the frame of
the sequence with the most people of at least `MIN_AREA` pixels, and the frames after
it. Each object count K takes the K largest people of that frame and is timed over the
same frames through `make_predictor` (the settings' own processing size, raised for small
objects as `lgdk segment` does), after the first frame and one warm-up frame. Counts run
one after the other, twice in turn (1, 2, ..., N, N, ..., 1), and each count's two medians
are averaged, so that a drift of the machine's speed falls on every count alike.

    python scripts/crowd_speed.py --part report --objects 1,2,5,10 --crop-share 0.5

Prints per count: the processing size, the median ms a frame, frames/s, the ratio to one
object's frames/s, and what each object beyond the first adds. mots-0005 is the selection
part, mots-0009 the report part (`scripts/mots_clips.py`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mots_clips import MIN_AREA, MOTS_PARTS  # noqa: E402

from lgdk.cli.common import add_setting_flags, given_settings  # noqa: E402
from lgdk.data.masks import VOID, read_mask  # noqa: E402
from lgdk.infer.loading import load_models  # noqa: E402
from lgdk.infer.tta import make_predictor  # noqa: E402


def crowd_start(masks: list[Path], most: int) -> tuple[int, list[int]]:
    """The frame with the most people of MIN_AREA pixels or more (the first of equals)
    and their ids, largest first, at most `most`."""
    best, people = 0, []
    for i, path in enumerate(masks):
        ids = read_mask(path)
        found, counts = np.unique(ids[(ids != 0) & (ids != VOID)], return_counts=True)
        large = [int(found[k]) for k in np.argsort(-counts) if counts[k] >= MIN_AREA][:most]
        if len(large) > len(people):
            best, people = i, large
    return best, people


def time_count(models, settings, frames: list[np.ndarray], first: np.ndarray,
               people: list[int]) -> tuple[float, int]:
    """Median ms a frame with `people` as objects (after the first and a warm-up frame),
    and the processing side chosen."""
    mask = np.zeros_like(first)
    for new, track in enumerate(people, 1):
        mask[first == track] = new
    predictor = make_predictor(models, settings)
    predictor.step(frames[0], mask)
    predictor.step(frames[1])
    times = []
    for frame in frames[2:]:
        start = time.perf_counter()
        predictor.step(frame)
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times), predictor.processing_side


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mots", default="out/mots", help="prepared MOTSChallenge root")
    parser.add_argument("--part", choices=sorted(set(MOTS_PARTS.values())), default="report")
    parser.add_argument("--objects", default="1,2,5,10", help="object counts, comma-separated")
    parser.add_argument("--frames", type=int, default=24, help="frames timed a count")
    parser.add_argument("--json", help="also write the figures here")
    add_setting_flags(parser, augmentation=False)
    args = parser.parse_args()
    counts = sorted({int(c) for c in args.objects.split(",")})
    seq = next(s for s, part in MOTS_PARTS.items() if part == args.part)
    root = Path(args.mots)
    masks = sorted((root / "Annotations/480p" / seq).glob("*.png"))
    images = sorted((root / "JPEGImages/480p" / seq).glob("*.jpg"))
    if not masks:
        sys.exit(f"no MOTS frames under {root}; prepare them with ../shared/data/mots/prepare.py")
    start, people = crowd_start(masks[:len(masks) - args.frames - 2], max(counts))
    counts = [c for c in counts if c <= len(people)]
    chosen = images[start:start + args.frames + 2]
    frames = [np.asarray(Image.open(p).convert("RGB")) for p in chosen]
    first = read_mask(masks[start])
    models, settings = load_models(None, "cpu", **given_settings(args))
    runs: dict[int, list[float]] = {c: [] for c in counts}
    sides: dict[int, int] = {}
    for count in counts + counts[::-1]:
        ms, sides[count] = time_count(models, settings, frames, first, people[:count])
        runs[count].append(ms)
    one = statistics.mean(runs[counts[0]])
    print(f"{seq} frame {start}: {len(people)} people; {frames[0].shape[1]}x{frames[0].shape[0]}, "
          f"{args.frames} frames timed, precision {models[0].precision}")
    rows = []
    for count in counts:
        ms = statistics.mean(runs[count])
        extra = (ms - one) / (count - 1) if count > 1 else 0.0
        rows.append(dict(objects=count, size=sides[count], ms=round(ms, 1),
                         fps=round(1000 / ms, 2), ratio=round(one / ms, 3),
                         ms_per_further_object=round(extra, 1)))
        print(f"{count:3d} objects  size {sides[count]}  {ms:7.1f} ms  {1000 / ms:5.2f} frames/s  "
              f"x{one / ms:.3f} of one object's  +{extra:.1f} ms an object beyond the first")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(sequence=seq, start=start, rows=rows), indent=1))


if __name__ == "__main__":
    main()
