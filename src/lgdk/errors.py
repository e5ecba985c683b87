"""User-facing errors: the CLI prints their one-line message and exits with status 2."""

from __future__ import annotations


class UserError(ValueError):
    """Bad input from the user; the message names the problem and the fix."""

