"""Tooling around the models: `lgdk bench`."""
