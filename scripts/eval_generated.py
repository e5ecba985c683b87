"""J of a model on generated multi-object clips, for several memory-encoding policies.

usage: python scripts/eval_generated.py [--checkpoint CKPT] [--encode-every 1,2,0]
           [--seeds 7,1,2,3] [--frames 40] [--objects 2] [--window W]

DAVIS-2016 has one object per sequence, so it cannot show identity swaps between
objects; these clips (the `lgdk demo` generator: textured shapes moving over a textured
background, crossing each other) can. Prints the mean J over objects and frames 1.. of
each clip, and the mean over clips, for each `--encode-every` value.
"""

import argparse
import dataclasses

import numpy as np
import torch

from lgdk.data.procedural import generate_clip
from lgdk.eval.metrics import jaccard
from lgdk.infer.loading import load_models
from lgdk.infer.predictor import Predictor
from lgdk.runtime import keep_large_allocations


def clip_jaccard(model, clip, settings, objects: int) -> float:
    predictor = Predictor(model, settings)
    values = []
    for t, frame in enumerate(clip.frames):
        probs = predictor.step(frame, clip.labels[0] if t == 0 else None)
        if t:
            labels = predictor.labels(probs)
            values += [jaccard(labels == o, clip.labels[t] == o) for o in range(1, objects + 1)]
    return float(np.mean(values))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", default=None, help="default: the shipped model")
    parser.add_argument("--encode-every", default="1,2,0")
    parser.add_argument("--seeds", default="7,1,2,3")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--objects", type=int, default=2)
    parser.add_argument("--window", type=float, default=None,
                        help="the motion window (default: the model's setting)")
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--width", type=int, default=640)
    args = parser.parse_args()
    keep_large_allocations()
    models, settings = load_models([args.checkpoint] if args.checkpoint else None, "cpu",
                                   window=args.window)
    seeds = [int(s) for s in args.seeds.split(",")]
    clips = [generate_clip(np.random.default_rng(s), args.height, args.width, args.frames,
                           args.objects) for s in seeds]
    with torch.inference_mode():
        for every in (int(v) for v in args.encode_every.split(",")):
            scores = [clip_jaccard(models[0], c, dataclasses.replace(settings, encode_every=every),
                                   args.objects) for c in clips]
            per_seed = " ".join(f"{s}:{j:.3f}" for s, j in zip(seeds, scores))
            print(f"--encode-every {every}: J {np.mean(scores):.3f} (seed:J {per_seed})",
                  flush=True)


if __name__ == "__main__":
    main()
