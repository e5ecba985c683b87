"""`lgdk demo`: make a clip whose truth is known, segment it, show where and how well."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from lgdk.data.masks import write_mask
from lgdk.data.procedural import generate_clip


def make_demo_clip(folder: Path, frames: int, height: int, width: int, seed: int) -> None:
    """frames/*.jpg, truth/<seq>/*.png (DAVIS layout, for `lgdk eval`), first_mask.png."""
    clip = generate_clip(np.random.default_rng(seed), height, width, frames, num_objects=2)
    (folder / "frames").mkdir(parents=True)
    (folder / "truth" / "clip").mkdir(parents=True)
    for i, (frame, label) in enumerate(zip(clip.frames, clip.labels)):
        Image.fromarray(frame).save(folder / "frames" / f"{i:05d}.jpg", quality=95)
        write_mask(folder / "truth" / "clip" / f"{i:05d}.png", label)
    write_mask(folder / "first_mask.png", clip.labels[0])


def run_demo(out: Path, predictor, frames: int = 40, height: int = 360, width: int = 640,
             seed: int = 7) -> dict:
    from lgdk.eval.davis import evaluate
    from lgdk.video.engine import segment_path

    out = Path(out)
    shutil.rmtree(out, ignore_errors=True)
    make_demo_clip(out, frames, height, width, seed)
    summary = segment_path(predictor, out / "frames", out / "first_mask.png",
                           out / "masks" / "clip", out / "overlay.mp4")
    results = evaluate(out / "masks", out / "truth", workers=1)
    return {"summary": summary, "results": results, "out": out}
