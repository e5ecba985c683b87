"""The shipped model: its file, its name and version (read without PyTorch, for
`lgdk --version`), and the inference settings it ships with: `SHIPPED_SETTINGS`, where
they differ from `InferenceConfig`'s defaults (as timm's `default_cfgs` beside its
weights). They travel inside the file too (`scripts/ship_default.py` writes them; a test
checks that the file and this set agree)."""

from __future__ import annotations

import json
import struct
from importlib import resources
from pathlib import Path

from lgdk.errors import UserError

DEFAULT_WEIGHTS = "default.safetensors"
MODEL_NAME = "lgdk-lite0-v1"  # family (backbone) and version of the shipped weights
SHIPPED_SETTINGS = {"size": 480, "cpu_float32_size": 384,  # besides InferenceConfig's
                    "top_k": 20, "window": 0.5, "object_cells": 4, "crop_share": 0.8,
                    "crop_margin": 1.0}


def default_checkpoint() -> Path:
    path = Path(str(resources.files("lgdk") / "weights" / DEFAULT_WEIGHTS))
    if not path.is_file():
        raise UserError(f"this install has no default model ({path} is missing); pass "
                        "--checkpoint PATH, or reinstall lgdk")
    return path


def header_metadata(path: str | Path) -> dict[str, str]:
    """A safetensors file's metadata from its JSON header alone ({} if it has none)."""
    with open(path, "rb") as handle:
        (size,) = struct.unpack("<Q", handle.read(8))
        if size > 100 << 20:
            raise UserError(f"{path} is not a safetensors file (header of {size} bytes)")
        header = json.loads(handle.read(size))
    return header.get("__metadata__", {})


def model_name(path: str | Path | None = None) -> str:
    """The name a checkpoint's metadata gives its model ("unnamed" if none)."""
    metadata = header_metadata(path or default_checkpoint())
    return json.loads(metadata["model"]) if "model" in metadata else "unnamed"
