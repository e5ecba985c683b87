"""J&F of one model and setting on the real development data, split into the part that
settings, checkpoints and recipes are chosen on (`selection`) and the part that is only
reported (`report`), at several processing sizes: the small-objects issue's table.

usage: python scripts/eval_split.py NAME [--sizes 384,480,600]
           [--sets devval,dogs,small,clips,mots] [--parts selection,report]
           [-- extra lgdk segment flags, e.g. --checkpoint C --window 0]

Sets (each video in its part by its name, `scripts/splits.py`):
- devval: the DAVIS-2016 dev-val sequences, one large object each;
- dogs: DAVIS-2017 dogs-jump, 3 objects, every frame annotated (from its mp4);
- small: dev-val objects pasted at 0.3 scale onto other dev-val videos of the same part
  (`scripts/make_composite_clips.py --part P --scale 0.3`, 3 objects a clip: the
  background video's own object and two small pasted ones), per object;
- clips: the 5 DAVIS-2017 test-dev clips with only a first-frame mask: label-free,
  segmented forward, then backward from the last frame's predicted mask; the IoU of the
  frame-0 mask that comes back with the given one, per object;
- mots: real street crowds, clips cut from MOTSChallenge (`scripts/mots_clips.py`, from
  out/mots as `../shared/data/mots/prepare.py` writes it): mots-0005's in the selection
  part, mots-0009's in the report part; segmented forward from the first frame's mask,
  J&F per object (its own id: a person whose mask passes to another loses it).
Writes out/split/NAME/ (predictions and split-PARTS.json) and prints one table per part: a row
per video (and per object where there are several), a column per size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from mots_clips import MOTS_PARTS, cut_clips
from splits import part_of

from lgdk.data.masks import object_ids, read_mask, write_mask
from lgdk.eval.davis import evaluate
from lgdk.eval.metrics import jaccard

LGDK = str(Path(sys.executable).with_name("lgdk"))
DEVVAL = Path("../shared/data/davis2016/dev-val")
DOGS = Path("../shared/data/davis2017/dogs-jump")
CLIPS = Path("../shared/data/davis2017/test-dev-clips")
MOTS = Path("out/mots")
SMALL_SCALE = 0.3


def segment(args: list[str], extra: list[str]) -> None:
    subprocess.run([LGDK, "segment", *args, "--no-progress", *extra], check=True,
                   stdout=subprocess.DEVNULL)


def jf_rows(pred: Path, gt: Path) -> dict[str, float]:
    """{video or video/object: J&F} from `lgdk eval`'s own computation."""
    results = evaluate(pred, gt, workers=2)
    rows = {}
    for seq, info in results["sequences"].items():
        rows[seq] = info["J&F-Mean"]
        if len(info["objects"]) > 1:
            rows.update({f"{seq}/{o}": (s["J-Mean"] + s["F-Mean"]) / 2
                         for o, s in info["objects"].items()})
    return rows


def run_devval(out: Path, size: int, extra: list[str], parts: list[str]) -> dict:
    root = devval_parts(out, parts)
    pred = out / f"devval-{size}"
    segment(["--dataset", str(root), "--out", str(pred), "--size", str(size)], extra)
    return jf_rows(pred, root / "Annotations")


def devval_parts(out: Path, parts: list[str]) -> Path:
    """A DAVIS layout of links to the dev-val sequences of `parts` only."""
    root = out / ("devval-" + "+".join(parts))
    for layout in ("JPEGImages", "Annotations"):
        (root / layout).mkdir(parents=True, exist_ok=True)
        for seq in sorted((DEVVAL / layout).iterdir()):
            link = root / layout / seq.name
            if part_of(seq.name) in parts and not link.exists():
                link.symlink_to(seq.resolve())
    return root


def run_dogs(out: Path, size: int, extra: list[str], parts: list[str]) -> dict:
    if part_of("dogs-jump") not in parts:
        return {}
    pred = out / f"dogs-{size}"
    segment([str(DOGS / "dogs-jump.mp4"), "--mask", str(DOGS / "Annotations/00000.png"),
             "--out", str(pred / "dogs-jump"), "--size", str(size)], extra)
    gt = out / "gt-dogs"
    gt.mkdir(parents=True, exist_ok=True)
    if not (gt / "dogs-jump").exists():
        (gt / "dogs-jump").symlink_to((DOGS / "Annotations").resolve())
    return jf_rows(pred, gt)


def small_clips(out: Path, part: str) -> Path:
    """The pasted-small clips of one part (made once)."""
    root = out.parent / f"small-{part}"
    if not root.is_dir():
        subprocess.run([sys.executable, "scripts/make_composite_clips.py", "--part", part,
                        "--scale", str(SMALL_SCALE), "--objects", "3", "--out", str(root)],
                       check=True, stdout=subprocess.DEVNULL)
    return root


def run_small(out: Path, size: int, extra: list[str], parts: list[str]) -> dict:
    rows = {}
    for part in parts:
        root = small_clips(out, part)
        pred = out / f"small-{part}-{size}"
        segment(["--dataset", str(root), "--out", str(pred), "--size", str(size)], extra)
        rows.update({f"small:{k}": v for k, v in jf_rows(pred, root / "Annotations").items()})
    return rows


def run_clips(out: Path, size: int, extra: list[str], parts: list[str]) -> dict:
    """Forward, then backward from the last frame's mask: frame 0's IoU per object."""
    rows = {}
    for video in sorted(CLIPS.glob("*.mp4")):
        name = video.stem
        if part_of(name) not in parts:
            continue
        given = read_mask(CLIPS / f"{name}.png")
        forward = out / f"clips-{size}" / name / "forward"
        segment([str(video), "--mask", str(CLIPS / f"{name}.png"), "--out", str(forward),
                 "--size", str(size), "--direction", "forward"], extra)
        last = sorted(forward.glob("*.png"))[-1]
        start = out / f"clips-{size}" / name / "last"
        start.mkdir(parents=True, exist_ok=True)
        write_mask(start / last.name, read_mask(last))
        backward = out / f"clips-{size}" / name / "backward"
        segment([str(video), "--mask", str(start), "--out", str(backward), "--size",
                 str(size), "--direction", "backward"], extra)
        back = read_mask(sorted(backward.glob("*.png"))[0])
        h, w = min(back.shape[0], given.shape[0]), min(back.shape[1], given.shape[1])
        back, given = back[:h, :w], given[:h, :w]  # an odd-width mask, its mp4 even-width
        ious = {o: jaccard(back == o, given == o) for o in object_ids(given)}
        rows[f"fb:{name}"] = float(np.mean(list(ious.values())))
        rows.update({f"fb:{name}/{o}": v for o, v in ious.items()})
    return rows


def mots_layout(out: Path, parts: list[str]) -> Path | None:
    """A DAVIS layout of the MOTS clips of `parts` (links to the frames, the clips' masks);
    None when out/mots is not prepared."""
    root = out.parent / ("mots-" + "+".join(parts))
    seqs = [s for s, part in MOTS_PARTS.items() if part in parts]
    if not all((MOTS / "JPEGImages/480p" / s).is_dir() for s in seqs):
        print(f"mots: {MOTS} is not prepared (../shared/data/mots/README.md); left out",
              file=sys.stderr)
        return None
    if not (root / "Annotations").is_dir():
        for seq in seqs:
            for name, folder, truth in cut_clips(MOTS, seq, root / "JPEGImages"):
                (root / "Annotations" / name).mkdir(parents=True, exist_ok=True)
                for frame, ids in zip(sorted(folder.iterdir()), truth):
                    write_mask(root / "Annotations" / name / f"{frame.stem}.png", ids)
    return root


def run_mots(out: Path, size: int, extra: list[str], parts: list[str]) -> dict:
    root = mots_layout(out, parts)
    if root is None:
        return {}
    pred = out / f"mots-{size}"
    segment(["--dataset", str(root), "--out", str(pred), "--size", str(size)], extra)
    return {f"mots:{k}": v for k, v in jf_rows(pred, root / "Annotations").items()}


RUNS = {"devval": run_devval, "dogs": run_dogs, "small": run_small, "clips": run_clips,
        "mots": run_mots}


def print_tables(table: dict, sizes: list[int], parts: list[str]) -> None:
    devval = {p.name for p in (DEVVAL / "JPEGImages").iterdir()}
    groups = (("mean, dev-val", lambda k: k in devval),
              ("mean, small set per object", lambda k: k.startswith("small:") and "/" in k),
              ("mean, clips (fb)", lambda k: k.startswith("fb:") and "/" not in k),
              ("mean, mots per object", lambda k: k.startswith("mots:") and "/" in k))
    for part in parts:
        names = sorted({k for s in sizes for k in table[s] if _part(k) == part})
        print(f"\n{part} part (J&F; fb: forward-backward IoU of frame 0, no labels)")
        print("| video | " + " | ".join(str(s) for s in sizes) + " |")
        print("|---|" + "---|" * len(sizes))
        for name in names:
            print(f"| {name} | " + " | ".join(
                f"{table[s][name]:.3f}" if name in table[s] else "-" for s in sizes) + " |")
        for label, keep in groups:
            means = [[v for k, v in table[s].items() if keep(k) and _part(k) == part]
                     for s in sizes]
            if any(means):
                print(f"| **{label}** | " + " | ".join(
                    f"{np.mean(m):.3f}" if m else "-" for m in means) + " |")


def _video(key: str) -> str:
    """The name a row's part follows: a small clip's first (background) video."""
    return key.split(":", 1)[-1].split("/")[0].split("+")[0]


def _part(key: str) -> str:
    """A row's part: a MOTS clip's sequence's, else by the video's name."""
    video = _video(key)
    return MOTS_PARTS.get(video[:9], part_of(video)) if video.startswith("mots-") \
        else part_of(video)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("name")
    parser.add_argument("--sizes", default="384,480,600")
    parser.add_argument("--sets", default=",".join(RUNS))
    parser.add_argument("--parts", default="selection,report")
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:cut])
    args.extra = argv[cut + 1:]  # more `lgdk segment` flags, after --
    out = Path("out/split") / args.name
    out.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    parts = args.parts.split(",")
    table = {}
    for size in sizes:
        table[size] = {}
        for name in args.sets.split(","):
            table[size].update(RUNS[name](out, size, args.extra, parts))
    (out / f"split-{'+'.join(parts)}.json").write_text(json.dumps(
        {"sizes": sizes, "extra": args.extra, "rows": table}, indent=1))
    print_tables(table, sizes, parts)


if __name__ == "__main__":
    main()
