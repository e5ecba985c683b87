"""Finding and loading models for inference (the shipped default, or user checkpoints)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch

from lgdk.errors import UserError
from lgdk.models.checkpoint import load_checkpoint
from lgdk.models.network import LGDK

DEFAULT_WEIGHTS = "default.safetensors"


def default_checkpoint() -> Path:
    path = Path(str(resources.files("lgdk") / "weights" / DEFAULT_WEIGHTS))
    if not path.is_file():
        raise UserError(f"this install has no default model ({path} is missing); pass "
                        "--checkpoint PATH, or reinstall lgdk")
    return path


def resolve_device(device: str | None) -> str:
    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA GPU is available; use "
                        "--device cpu")
    if device != "cpu" and not device.startswith("cuda"):
        raise UserError(f"unknown device '{device}'; use cpu or cuda")
    return device


def load_models(checkpoints: list[str] | None, device: str,
                top_k: int | None = None) -> list[LGDK]:
    """Load checkpoints (default: the shipped model) for inference (BatchNorm folded, see
    `LGDK.optimize_for_inference`);
    `top_k` overrides the memory read's."""
    paths = [Path(c) for c in checkpoints] if checkpoints else [default_checkpoint()]
    models = []
    for path in paths:
        model, _ = load_checkpoint(path)
        model = model.to(device).eval()
        model.optimize_for_inference()
        if top_k is not None:
            if top_k < 0:
                raise UserError(f"--top-k must be 0 (every memory position) or more, not "
                                f"{top_k}")
            model.reader.top_k = top_k
        if device == "cpu":
            model = model.to(memory_format=torch.channels_last)
        models.append(model)
    return models


def default_size(models: list) -> int:
    """The processing size (shorter side) the first model was shipped for; 480 for models
    that do not say (ONNX graphs, whose size is fixed at export)."""
    cfg = getattr(models[0], "cfg", None)
    return cfg.inference_size if cfg is not None else 480
