"""The `lgdk` command: segment, demo, app, eval, train, bench, export.

One table of commands; each command group is a module (`segment`: the video
application, `app`: the web page, `evaluate`, `train`, `tools`: bench and export) with
its parser and handler.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import NamedTuple

from lgdk.cli import app, evaluate, segment, tools, train
from lgdk.errors import UserError
from lgdk.runtime import keep_large_allocations


class Command(NamedTuple):
    add: Callable  # (subparsers) -> None
    run: Callable  # (args) -> exit status
    tune_allocator: bool  # keeps large freed blocks for reuse (faster 480p maps on a CPU)


COMMANDS = {
    "segment": Command(segment.add, segment.run, True),
    "demo": Command(segment.add_demo, segment.run_demo, True),
    "app": Command(app.add, app.run, True),
    "eval": Command(evaluate.add, evaluate.run, False),
    "train": Command(train.add, train.run, False),
    "bench": Command(tools.add_bench, tools.run_bench, True),
    "export": Command(tools.add_export, tools.run_export, False),
}


class _Version(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        from lgdk import __version__
        from lgdk.shipped import default_checkpoint, model_name

        print(f"lgdk {__version__}, shipped model {model_name()} ({default_checkpoint()})")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lgdk", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action=_Version, nargs=0,
                        help="the version of lgdk and the name of its shipped model")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logs")
    parser.add_argument("--system-malloc", action="store_true",
                        help="keep the C library's default allocation settings (by default "
                        "segment, demo, bench and app keep large freed blocks for reuse: "
                        "faster on a CPU; app also shares two arenas among its threads: "
                        "less memory)")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS.values():
        command.add(sub)
    return parser


def main(argv: list[str] | None = None, tune_process: bool = False) -> int:
    """Run one command. `tune_process` (the installed `lgdk` program): process-wide
    settings that some commands profit from; a library caller's process is left alone."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s: %(message)s")
    command = COMMANDS[args.command]
    if tune_process and command.tune_allocator and not args.system_malloc:
        keep_large_allocations()
    try:
        return command.run(args)
    except UserError as exc:
        print(f"lgdk {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lgdk {args.command}: interrupted", file=sys.stderr)
        return 130


def console() -> int:
    """The installed `lgdk` program."""
    return main(tune_process=True)


if __name__ == "__main__":
    sys.exit(console())
