"""J&F of whole videos started from boxes on frame 0 against the same boxes on the middle
frame (propagated both ways), per sequence, as a user who picks the frame where the
objects are clearest would start.

usage: python scripts/eval_middle_box.py --src ../shared/data/davis2016/dev-val
           [--mp4 ../shared/data/davis2017/dogs-jump/dogs-jump.mp4]
           [--out out/middle-box] [--method learned] [--sequences a,b]

--src: a DAVIS layout (JPEGImages/<seq>, Annotations/<seq> with every frame's truth);
--mp4: a video with an Annotations/ folder beside it (decoded once to lossless PNGs).
Each object's tight box comes from the truth of the frame it is drawn on; the box becomes
a mask with `lgdk.prompts` (as `lgdk segment --box --prompt-frame K` does) and the video
is segmented both ways from it. J&F as `lgdk eval` computes it (frames 1 to n-2).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from lgdk.data.layouts import davis_sequences
from lgdk.data.masks import object_ids, read_mask
from lgdk.eval.davis import evaluate
from lgdk.infer.loading import load_models
from lgdk.infer.tta import make_predictor
from lgdk.prompts import DEFAULT_METHOD, METHODS
from lgdk.prompts.spec import Box, ObjectPrompt
from lgdk.video.prompted import segment_from_prompts
from lgdk.video.video_io import open_frames


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--src", action="append", default=[], help="a DAVIS layout (repeat)")
    p.add_argument("--mp4", action="append", default=[],
                   help="a video with Annotations/ beside it (repeat)")
    p.add_argument("--out", default="out/middle-box")
    p.add_argument("--method", default=DEFAULT_METHOD, choices=METHODS)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--sequences", default=None)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    out = Path(args.out)
    layouts = [Path(s) for s in args.src] + [mp4_layout(Path(v), out / "layouts")
                                             for v in args.mp4]
    models, settings = load_models([args.checkpoint] if args.checkpoint else None, "cpu")
    make = lambda: make_predictor(models, settings, "cpu")  # noqa: E731
    wanted = set(args.sequences.split(",")) if args.sequences else None
    table = {}
    for root in layouts:
        for seq in davis_sequences(root):
            if wanted and seq not in wanted:
                continue
            truth = sorted((root / "Annotations" / seq).glob("*.png"))
            scores = {}
            for start, k in (("frame 0", 0), ("middle", len(truth) // 2)):
                pred = out / start.replace(" ", "") / seq
                if not pred.is_dir():
                    segment_from_prompts(make, root / "JPEGImages" / seq,
                                         boxes(read_mask(truth[k])), pred, k, args.method,
                                         progress=False, max_objects=settings.max_objects)
                result = evaluate(pred.parent, root / "Annotations", [seq], workers=2)
                scores[start] = result["sequences"][seq]["J&F-Mean"]
                scores[f"{start} frame"] = k
            table[seq] = scores
            print(f"{seq:18s} frame 0: {scores['frame 0']:.3f}  middle (frame "
                  f"{scores['middle frame']}): {scores['middle']:.3f}  ratio "
                  f"{scores['middle'] / max(scores['frame 0'], 1e-9):.3f}", flush=True)
    first = np.mean([s["frame 0"] for s in table.values()])
    middle = np.mean([s["middle"] for s in table.values()])
    print(f"{'mean':18s} frame 0: {first:.3f}  middle: {middle:.3f}  ratio "
          f"{middle / first:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2))


def boxes(mask: np.ndarray) -> list[ObjectPrompt]:
    prompts = []
    for i in object_ids(mask):
        ys, xs = np.nonzero(mask == i)
        prompts.append(ObjectPrompt(int(i), box=Box(float(xs.min()), float(ys.min()),
                                                   float(xs.max() + 1), float(ys.max() + 1))))
    return prompts


def mp4_layout(video: Path, root: Path) -> Path:
    """A DAVIS layout of one video: its frames as PNGs, its Annotations linked."""
    seq = video.stem
    frames = root / "JPEGImages" / seq
    if not frames.is_dir():
        frames.mkdir(parents=True)
        for name, frame in open_frames(video):
            Image.fromarray(frame).save(frames / f"{name}.png")
    link = root / "Annotations" / seq
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to((video.parent / "Annotations").resolve())
    return root


if __name__ == "__main__":
    main()
