"""User-facing errors: the CLI prints their one-line message and exits with status 2."""

from __future__ import annotations


class UserError(ValueError):
    """Bad input from the user; the message names the problem and the fix."""


def user_error_types() -> tuple[type[Exception], ...]:
    """Every error class that means bad input rather than a bug (imported lazily)."""
    from lgdk.config import ConfigError
    from lgdk.data.layouts import DataError
    from lgdk.data.masks import MaskError
    from lgdk.models.backbones import BackboneError
    from lgdk.models.checkpoint import CheckpointError

    return (ConfigError, DataError, MaskError, BackboneError, CheckpointError,
            FileNotFoundError)
