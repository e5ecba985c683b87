"""Turn a trained checkpoint into the shipped default model (float16 safetensors). The
inference settings it ships with are the training config's `inference` section with
`lgdk.shipped.SHIPPED_SETTINGS` over it; `--set inference.KEY=VALUE` overrides both.

usage: python scripts/ship_default.py RUN/final.safetensors [--set inference.size=384 ...]
           [--name lgdk-lite0-v1]

Given a file it shipped before (to change only its inference settings), the run it was
trained from is kept as its origin.
"""

import argparse
import json

import torch

from lgdk.config import Config, apply_overrides, from_dict, to_dict
from lgdk.models.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from lgdk.shipped import DEFAULT_WEIGHTS, MODEL_NAME, SHIPPED_SETTINGS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint")
    parser.add_argument("--set", action="append", default=[], metavar="inference.KEY=VALUE")
    parser.add_argument("--out", default=f"src/lgdk/weights/{DEFAULT_WEIGHTS}")
    parser.add_argument("--name", default=MODEL_NAME,
                        help="the model's name and version, in its metadata and `lgdk "
                             "--version`")
    args = parser.parse_args()
    model, cfg = load_checkpoint(args.checkpoint)
    shipped = [f"inference.{k}={v}" for k, v in SHIPPED_SETTINGS.items()]
    cfg = from_dict(Config, apply_overrides(to_dict(cfg), shipped + args.set))
    meta = read_metadata(args.checkpoint)
    origin = {k: json.loads(meta[k]) for k in ("trained_from", "iteration") if k in meta}
    extra = {"model": args.name,
             "trained_from": origin.get("trained_from", args.checkpoint),
             "iteration": origin.get("iteration", meta.get("iteration")),
             "license": "CC BY-NC 4.0 (trained on DAVIS, DUTS-TR, ECSSD and Penn-Fudan, "
                        "research-use data sets): non-commercial use only"}
    save_checkpoint(args.out, model, cfg, dtype=torch.float16, extra=extra)
    print(f"wrote {args.out} (inference settings: {cfg.inference})")


if __name__ == "__main__":
    main()
