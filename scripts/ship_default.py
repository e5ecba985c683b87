"""Turn a trained checkpoint into the shipped default model (float16 safetensors).

usage: python scripts/ship_default.py RUN/final.safetensors [--top-k K] [--size S]
"""

import argparse
import dataclasses

import torch

from lgdk.infer.loading import DEFAULT_WEIGHTS
from lgdk.models.checkpoint import load_checkpoint, read_metadata, save_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint")
    parser.add_argument("--top-k", type=int, default=None, help="memory read top-k to ship")
    parser.add_argument("--size", type=int, default=None,
                        help="processing shorter side the model runs at by default")
    parser.add_argument("--out", default=f"src/lgdk/weights/{DEFAULT_WEIGHTS}")
    args = parser.parse_args()
    model, cfg = load_checkpoint(args.checkpoint)
    if args.top_k is not None:
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, top_k=args.top_k))
    if args.size is not None:
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model,
                                                                 inference_size=args.size))
    meta = read_metadata(args.checkpoint)
    extra = {"trained_from": args.checkpoint, "iteration": meta.get("iteration"),
             "license": "CC BY-NC 4.0 (trained on DAVIS, DUTS-TR, ECSSD and Penn-Fudan, "
                        "research-use data sets): non-commercial use only"}
    save_checkpoint(args.out, model, cfg, dtype=torch.float16, extra=extra)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
