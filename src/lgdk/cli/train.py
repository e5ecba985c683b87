"""`lgdk train`."""

from __future__ import annotations

from lgdk.cli.common import add_device_flag


def add(sub) -> None:
    p = sub.add_parser("train", help="train a model (torchrun for several processes)")
    p.add_argument("--config", required=True,
                   help="a preset of the package by name (stage0, lite0-stage2, ...) or a "
                        "YAML file")
    p.add_argument("--out", required=True, help="run folder (checkpoints, logs, config)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.state.pt")
    add_device_flag(p)
    p.add_argument("--stop-at", type=int, default=None,
                   help="stop (checkpointed, resumable) after this iteration")
    p.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    from lgdk.config import load_config
    from lgdk.train.loop import train

    cfg = load_config(args.config, args.set)
    path = train(cfg, args.out, resume=args.resume, device=args.device,
                 progress=not args.no_progress, stop_at=args.stop_at)
    print(f"trained: {path}")
    return 0
