"""A checkpoint of another architecture with the shipped model's settings, its weights
untrained (to time a backbone before training one: speed does not depend on the weights'
values; `scripts/bench_interleaved.py --checkpoint-b`).

usage: python scripts/untrained_checkpoint.py --out runs/lite1-untrained.safetensors \
           --set model.backbone=tf_efficientnet_lite1 [--like CHECKPOINT]
"""

import argparse
import dataclasses

from lgdk.config import Config, apply_overrides, from_dict, to_dict
from lgdk.models.checkpoint import read_config, save_checkpoint
from lgdk.models.network import build_model
from lgdk.shipped import default_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--like", default=None, help="take its config (default: the shipped model)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    cfg = read_config(args.like or default_checkpoint())
    cfg = from_dict(Config, apply_overrides(to_dict(cfg), args.set))
    model = build_model(dataclasses.replace(cfg.model, pretrained=False, weights_file=None))
    save_checkpoint(args.out, model, cfg)
    print(f"{args.out}: {cfg.model.backbone}, "
          f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters")


if __name__ == "__main__":
    main()
