"""Per-frame time of two inference settings, frame by frame in turn on the same clip.

usage: python scripts/bench_interleaved.py --a window=0 --b window=0.5 [--frames 200]
           [--objects 2] [--checkpoint C] [--checkpoint-b D]

On a shared machine the speed drifts (the matmul figure of `lgdk bench` moved from 85 to
173 GFLOP/s between runs a minute apart), more than a small change
costs. Here two predictors (one per setting, same model) take the same frames in turn, so
that both see the same drift; with --checkpoint-b the second predictor runs another model
(e.g. another backbone, `scripts/untrained_checkpoint.py`: speed does not depend on the
weights' values); printed: each one's median and mean milliseconds a frame,
and the median of the per-frame differences.
"""

import argparse
import dataclasses
import time

import numpy as np
import torch

from lgdk.data.procedural import generate_clip
from lgdk.infer.loading import load_models
from lgdk.infer.predictor import Predictor
from lgdk.runtime import keep_large_allocations


def parse_setting(text: str) -> dict:
    if not text:
        return {}
    key, _, value = text.partition("=")
    return {key.strip(): float(value) if "." in value else int(value)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--a", default="", help="KEY=VALUE of the inference settings")
    parser.add_argument("--b", default="", help="KEY=VALUE of the inference settings")
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--objects", type=int, default=2)
    parser.add_argument("--checkpoint", default=None, help="default: the shipped model")
    parser.add_argument("--checkpoint-b", default=None, help="the second predictor's model "
                        "(default: --checkpoint), its own inference settings")
    args = parser.parse_args()
    keep_large_allocations()
    predictors = []
    for checkpoint, setting in ((args.checkpoint, args.a),
                                (args.checkpoint_b or args.checkpoint, args.b)):
        models, settings = load_models([checkpoint] if checkpoint else None, "cpu")
        settings = dataclasses.replace(settings, **parse_setting(setting))
        predictors.append(Predictor(models[0], settings))
    clip = generate_clip(np.random.default_rng(0), 480, 854, 60, args.objects)
    times = np.zeros((2, args.frames))
    warmup = 5
    with torch.inference_mode():
        for t in range(args.frames + warmup):
            frame = clip.frames[t % len(clip.frames)]
            for k, predictor in enumerate(predictors):
                start = time.perf_counter()
                predictor.step(frame, clip.labels[0] if t == 0 else None)
                if t >= warmup:
                    times[k, t - warmup] = time.perf_counter() - start
    times *= 1000
    names = [f"a ({args.a or 'its settings'})", f"b ({args.b or 'its settings'})"]
    for name, row in zip(names, times):
        print(f"{name}: median {np.median(row):.1f} ms, mean {row.mean():.1f} ms a frame")
    print(f"b - a, median of the per-frame differences: {np.median(times[1] - times[0]):+.2f} ms")


if __name__ == "__main__":
    main()
