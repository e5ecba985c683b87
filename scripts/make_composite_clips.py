"""Real multi-object test clips from single-object DAVIS sequences, for measuring only.

usage: python scripts/make_composite_clips.py [--src ../shared/data/davis2016/dev-val]
           [--out out/composite] [--objects 3] [--clips 5] [--scale 0.6]
           [--part selection|report|all]

DAVIS-2016 has one object per sequence, so it cannot show masks that bleed into each other
or identities that swap. Each clip here is one sequence (its object is id 1) with the
objects of the next sequences (ids 2, 3, ...) cut out of their own frames, frame by frame,
scaled by --scale and pasted over it, each on its own third of the frame: real objects with
their real motion and deformation, in front of one another where their paths meet (the
later id in front; masks cut to what is visible). Written as a DAVIS layout
(JPEGImages/, Annotations/ with every frame annotated) for `lgdk segment --dataset` and
`lgdk eval`. Never train on it: it is made of dev-val.

--crowd: like the held-out seven-person video, each clip is one non-person sequence (its
object id 1) with six people pasted over it: each of the three person sequences twice
(ids 2-7), the second copy mirrored and 20 frames later in its own video, so that two
objects look the same and only memory tells them apart; scaled by --crowd-scale, spread
along the frame, crossing as they move.
"""

import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from splits import in_part

from lgdk.data.layouts import davis_frames, davis_sequences
from lgdk.data.masks import read_mask, write_mask

PEOPLE = ("breakdance", "dance-twirl", "parkour")
CROWD_BACKGROUNDS = ("blackswan", "camel", "car-roundabout", "cows", "drift-straight")
CROWD_DELAY = 20  # frames between a person's two copies


def load_sequence(root: Path, seq: str, length: int, start: int = 0, mirror: bool = False):
    pairs = davis_frames(root, seq)[start:start + length]
    frames = [np.asarray(Image.open(i).convert("RGB")) for i, _ in pairs]
    masks = [read_mask(m) > 0 for _, m in pairs]
    if mirror:
        frames = [np.ascontiguousarray(f[:, ::-1]) for f in frames]
        masks = [np.ascontiguousarray(m[:, ::-1]) for m in masks]
    return frames, masks, [i.stem for i, _ in pairs]


def paste_track(frames, labels, src_frames, src_masks, object_id, scale, target):
    """Paste the object of (src_frames, src_masks), scaled, so that its mean centre over the
    clip lands on `target` (x, y); in place, over what is already there."""
    height, width = labels[0].shape
    ys, xs = np.nonzero(np.any(np.stack(src_masks), axis=0))
    centre = np.array([xs.mean(), ys.mean()]) * scale
    dx, dy = (np.asarray(target) - centre).round().astype(int)
    for frame, label, src, mask in zip(frames, labels, src_frames, src_masks):
        size = (round(src.shape[1] * scale), round(src.shape[0] * scale))
        src = np.asarray(Image.fromarray(src).resize(size, Image.BILINEAR))
        mask = np.asarray(Image.fromarray(mask).resize(size, Image.NEAREST))
        my, mx = np.nonzero(mask)
        ty, tx = my + dy, mx + dx
        keep = (ty >= 0) & (ty < height) & (tx >= 0) & (tx < width)
        frame[ty[keep], tx[keep]] = src[my[keep], mx[keep]]
        label[ty[keep], tx[keep]] = object_id


def write_clip(out: Path, clip: str, stems, frames, labels) -> None:
    (out / "JPEGImages" / clip).mkdir(parents=True, exist_ok=True)
    (out / "Annotations" / clip).mkdir(parents=True, exist_ok=True)
    for stem, frame, label in zip(stems, frames, labels):
        Image.fromarray(frame).save(out / "JPEGImages" / clip / f"{stem}.jpg", quality=95)
        write_mask(out / "Annotations" / clip / f"{stem}.png", label)
    print(f"{clip}: {len(frames)} frames, objects {sorted(np.unique(labels[0]).tolist())[1:]}")


def make_crowd_clip(src: Path, out: Path, background: str, scale: float,
                    length: int = 60, name: str = "") -> None:
    """`background`'s object (id 1) and the six pasted people (ids 2-7), as clip
    `name` (default crowd-BACKGROUND)."""
    length = min([length, len(davis_frames(src, background))]
                 + [len(davis_frames(src, p)) - CROWD_DELAY for p in PEOPLE])
    frames, masks, stems = load_sequence(src, background, length)
    frames = [f.copy() for f in frames]
    labels = [m.astype(np.uint8) for m in masks]
    height, width = labels[0].shape
    copies = [(p, 0, False) for p in PEOPLE] + [(p, CROWD_DELAY, True) for p in PEOPLE]
    for k, (person, start, mirror) in enumerate(copies):
        target = (width * (k + 0.5) / len(copies), height * (0.5 + 0.1 * (k % 2)))
        src_frames, src_masks, _ = load_sequence(src, person, length, start, mirror)
        paste_track(frames, labels, src_frames, src_masks, k + 2, scale, target)
    write_clip(out, name or f"crowd-{background}", stems, frames, labels)


def make_crowds(src: Path, out: Path, part: str, scales: list[float]) -> None:
    """The crowd clips: CROWD_BACKGROUNDS (--part all), or every sequence of the part
    that is not a person's (the people themselves must be in the part too)."""
    if part == "all":
        backgrounds = CROWD_BACKGROUNDS
    else:
        if not all(in_part(p, part) for p in PEOPLE):
            raise SystemExit(f"the people {', '.join(PEOPLE)} are not all in the {part} "
                             "part: its crowd clips would mix the parts")
        backgrounds = tuple(n for n in davis_sequences(src)
                            if in_part(n, part) and n not in PEOPLE)
    for background in backgrounds:
        for scale in scales:
            name = f"crowd-{background}" + (f"-{scale:g}" if len(scales) > 1 else "")
            make_crowd_clip(src, out, background, scale, name=name)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--src", default="../shared/data/davis2016/dev-val")
    parser.add_argument("--out", default="out/composite")
    parser.add_argument("--objects", type=int, default=3)
    parser.add_argument("--clips", type=int, default=5)
    parser.add_argument("--scale", type=float, default=0.6)
    parser.add_argument("--crowd", action="store_true",
                        help="seven-object clips: six pasted people, two of each")
    parser.add_argument("--crowd-scale", default="0.45",
                        help="the people's scale; several (0.45,0.3): a clip for each, "
                             "named crowd-BACKGROUND-SCALE")
    parser.add_argument("--part", default="all", choices=("selection", "report", "all"),
                        help="only the sequences of this part of the split (scripts/splits.py)")
    args = parser.parse_args()
    src, out = Path(args.src), Path(args.out)
    if args.crowd:
        make_crowds(src, out, args.part, [float(s) for s in args.crowd_scale.split(",")])
        return
    names = [n for n in davis_sequences(src) if in_part(n, args.part)]
    clips = min(args.clips, len(names))
    step = max(1, len(names) // clips)
    for first in range(0, step * clips, step):
        group = [names[(first + k) % len(names)] for k in range(args.objects)]
        length = min(len(davis_frames(src, s)) for s in group)
        frames, masks, stems = load_sequence(src, group[0], length)
        frames = [f.copy() for f in frames]
        labels = [m.astype(np.uint8) for m in masks]
        height, width = labels[0].shape
        for k, seq in enumerate(group[1:], start=2):
            target = (width * (k - 1) / args.objects, height * 0.55)
            src_frames, src_masks, _ = load_sequence(src, seq, length)
            paste_track(frames, labels, src_frames, src_masks, k, args.scale, target)
        write_clip(out, "+".join(group), stems, frames, labels)


if __name__ == "__main__":
    main()
