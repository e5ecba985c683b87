"""The training data of `experiments/presets/crowd-gpu.yaml`, packed small enough to travel
with the work tree to a lent GPU. The `device` tool carries at most 64 MiB in all: the
tracked files (about 13 MiB), the wheels the device lacks (.whl/, about 19 MiB:
scripts/gpu_train.sh) and this pack, whose default budget is what is left with a margin.

    python scripts/gpu_pack.py gpu-pack [--mib 28]

Writes, under OUT (an ignored folder; nothing of it is committed):
- mots/: MOTSChallenge's training sequences (mots-0002, mots-0011 only, from out/mots as
  `../shared/data/mots/prepare.py` writes it), DAVIS layout;
- davis2016-train/: ../shared/data/davis2016/train;
- stills/<set>/images + masks: DUTS-TR, ECSSD and Penn-Fudan photos with their masks.
Frames are resized to SIDE lines (masks nearest, void kept) and re-encoded as JPEG; each
video source keeps every k-th frame and the stills a seeded sample, k and the sample
sized so that each source stays within its share of the budget (SHARES). Prints what it
kept and the pack's size; exits non-zero if it is over the budget.
"""

from __future__ import annotations

import argparse
import io
import math
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from lgdk.data.layouts import davis_frames, davis_sequences, image_mask_pairs
from lgdk.data.masks import read_mask, write_mask

SIDE = 360  # shorter side of every packed frame (the training crop is 384 of a frame)
QUALITY = 80
SHARES = {"mots": 0.45, "davis2016-train": 0.3, "stills": 0.25}
TRAIN_SEQUENCES = ("mots-0002", "mots-0011")  # never the measured ones
STILLS = {"duts-tr": "../shared/data/static/duts-tr", "ecssd": "../shared/data/static/ecssd",
          "pennfudan": "../shared/data/static/pennfudan"}


def resized(image: Image.Image, mask: np.ndarray) -> tuple[bytes, np.ndarray]:
    """A frame and its mask at SIDE lines: (JPEG bytes, mask)."""
    w, h = image.size
    scale = SIDE / min(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    buffer = io.BytesIO()
    image.convert("RGB").resize(size, Image.BILINEAR).save(buffer, "JPEG", quality=QUALITY)
    small = np.asarray(Image.fromarray(mask).resize(size, Image.NEAREST))
    return buffer.getvalue(), small


def frame_bytes(pairs: list[tuple[Path, Path]], probe: int = 12) -> float:
    """Mean packed bytes of a frame and its mask, from an even sample of `probe` pairs."""
    picks = pairs[:: max(1, len(pairs) // probe)][:probe]
    total = 0
    for image, mask in picks:
        jpeg, small = resized(Image.open(image), read_mask(mask))
        buffer = io.BytesIO()
        Image.fromarray(small).save(buffer, "PNG")
        total += len(jpeg) + len(buffer.getvalue())
    return total / max(1, len(picks))


def write_pair(image: Path, mask: Path, out_image: Path, out_mask: Path) -> None:
    jpeg, small = resized(Image.open(image), read_mask(mask))
    out_image.parent.mkdir(parents=True, exist_ok=True)
    out_mask.parent.mkdir(parents=True, exist_ok=True)
    out_image.write_bytes(jpeg)
    write_mask(out_mask, small)


def pack_videos(root: Path, sequences: list[str], out: Path, budget: float) -> str:
    """Every k-th annotated frame of each sequence, k the smallest that fits `budget`."""
    videos = {s: [(i, m) for i, m in davis_frames(root, s) if m is not None] for s in sequences}
    pairs = [p for v in videos.values() for p in v]
    step = max(1, math.ceil(len(pairs) * frame_bytes(pairs) / budget))
    for seq, frames in videos.items():
        name = seq.split("/")[-1]
        for image, mask in frames[::step]:
            write_pair(image, mask, out / "JPEGImages" / name / f"{image.stem}.jpg",
                       out / "Annotations" / name / f"{mask.stem}.png")
    return f"{len(videos)} sequences, every {step} frame(s)"


def pack_stills(out: Path, budget: float, seed: int = 0) -> str:
    pairs = {name: image_mask_pairs(Path(root)) for name, root in STILLS.items()}
    every = [p for v in pairs.values() for p in v]
    keep = min(1.0, budget / (len(every) * frame_bytes(every)))
    rng = np.random.default_rng(seed)
    kept = 0
    for name, found in pairs.items():
        for k in sorted(rng.permutation(len(found))[:max(1, int(len(found) * keep))]):
            image, mask = found[k]
            write_pair(image, mask, out / name / "images" / f"{image.stem}.jpg",
                       out / name / "masks" / f"{image.stem}.png")
            kept += 1
    return f"{kept} of {len(every)} photos"


def size_mib(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--mib", type=float, default=28.0, help="the pack's budget")
    parser.add_argument("--mots", type=Path, default=Path("out/mots"))
    parser.add_argument("--davis", type=Path, default=Path("../shared/data/davis2016/train"))
    args = parser.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    budget = args.mib * 2**20 * 0.92  # JPEG sizes vary around the probe's mean
    mots = [f"480p/{s}" if (args.mots / "JPEGImages/480p").is_dir() else s
            for s in TRAIN_SEQUENCES]
    print("mots:", pack_videos(args.mots, mots, args.out / "mots", budget * SHARES["mots"]))
    print("davis2016-train:", pack_videos(args.davis, davis_sequences(args.davis),
                                          args.out / "davis2016-train",
                                          budget * SHARES["davis2016-train"]))
    print("stills:", pack_stills(args.out / "stills", budget * SHARES["stills"]))
    total = size_mib(args.out)
    print(f"{args.out}: {total:.1f} MiB (budget {args.mib:.0f})")
    if total > args.mib:
        sys.exit(f"the pack is {total:.1f} MiB, over --mib {args.mib:.0f}; lower SIDE or "
                 "QUALITY in scripts/gpu_pack.py")


if __name__ == "__main__":
    main()
