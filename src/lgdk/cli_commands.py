"""Sub-commands other than train (kept apart so cli.py stays small)."""

from __future__ import annotations

COMMANDS: dict = {}


def add_all(sub) -> None:
    pass
