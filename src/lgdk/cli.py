"""The `lgdk` command: segment, eval, train, bench, export, demo."""

from __future__ import annotations

import argparse
import logging
import sys

from lgdk.errors import UserError
from lgdk.runtime import keep_large_allocations


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model (torchrun for several processes)")
    p.add_argument("--config", required=True, help="preset name or YAML file")
    p.add_argument("--out", required=True, help="run folder (checkpoints, logs, config)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.state.pt")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--stop-at", type=int, default=None,
                   help="stop (checkpointed, resumable) after this iteration")
    p.add_argument("--no-progress", action="store_true")


def cmd_train(args) -> int:
    from lgdk.config import load_config
    from lgdk.train.loop import train

    cfg = load_config(args.config, args.set)
    path = train(cfg, args.out, resume=args.resume, device=args.device,
                 progress=not args.no_progress, stop_at=args.stop_at)
    print(f"trained: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lgdk", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logs")
    parser.add_argument("--system-malloc", action="store_true",
                        help="keep the C library's default allocation settings (by default "
                        "lgdk keeps large freed blocks for reuse: faster on a CPU)")
    sub = parser.add_subparsers(dest="command", required=True)
    from lgdk import cli_commands

    _add_train(sub)
    cli_commands.add_all(sub)
    return parser


COMMANDS = {"train": cmd_train}


def main(argv: list[str] | None = None) -> int:
    from lgdk import cli_commands

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s: %(message)s")
    handler = COMMANDS.get(args.command) or cli_commands.COMMANDS[args.command]
    if not args.system_malloc:
        keep_large_allocations()
    try:
        return handler(args)
    except UserError as exc:
        print(f"lgdk {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lgdk {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
