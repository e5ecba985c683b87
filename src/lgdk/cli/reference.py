"""The command-line reference (docs/cli.md) written from the parser itself, whose flags are
made from the settings' declarations (`InferenceConfig`, `AppSettings`): one source for
`--help` and the docs. `python -m lgdk.cli.reference > docs/cli.md` writes it; a test
checks that the file is what this module writes."""

from __future__ import annotations

import argparse

from lgdk.cli import build_parser

HEADER = """# Command-line reference

Every command and flag of `lgdk`, as `lgdk COMMAND --help` prints them. Written by
`python -m lgdk.cli.reference > docs/cli.md` from the flags' declarations (the inference
settings are `lgdk.config.InferenceConfig`'s fields, the app's limits
`lgdk.app.limits.AppSettings`'); a test fails when this file and the code differ.

Inference settings default to the model's own (saved in its checkpoint); their help names
the shipped model's values.
"""


def reference(parser: argparse.ArgumentParser | None = None) -> str:
    """Markdown: the program's own options, then one section per command."""
    parser = parser or build_parser()
    commands = _subcommands(parser)
    out = [HEADER, "## lgdk", "", f"`{_usage(parser)}`", "",
           "Commands: " + ", ".join(f"[`{n}`](#lgdk-{n})" for n in commands) + ".", "",
           *_table(parser)]
    for name, (sub, text) in commands.items():
        out += [f"## lgdk {name}", "", text[:1].upper() + text[1:] + ".", "",
                f"`{_usage(sub)}`", "", *_table(sub)]
    return "\n".join(out).rstrip() + "\n"


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[argparse.ArgumentParser,
                                                                     str]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            return {name: (sub, helps.get(name, "")) for name, sub in action.choices.items()}
    return {}


def _usage(parser: argparse.ArgumentParser) -> str:
    return " ".join(parser.format_usage().split())[len("usage: "):]


def _table(parser: argparse.ArgumentParser) -> list[str]:
    rows = ["| argument | what it does |", "|---|---|"]
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        rows.append(f"| {_name(action)} | {_cell(action.help or '')} |")
    return [*rows, ""] if len(rows) > 2 else []


def _name(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`"
    flags = ", ".join(action.option_strings)
    if action.nargs == 0:
        return f"`{flags}`"
    if action.choices is not None:
        return f"`{flags} {{{','.join(map(str, action.choices))}}}`"
    metavar = action.metavar or action.dest.upper()
    return f"`{flags} {metavar}`" if action.nargs != "?" else f"`{flags} [{metavar}]`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


if __name__ == "__main__":
    print(reference(), end="")
