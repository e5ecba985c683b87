"""Loading models for inference (the shipped default, or user checkpoints) with their
inference settings resolved once: the first checkpoint's, then what the caller gave."""

from __future__ import annotations

from pathlib import Path

import torch

from lgdk.config import InferenceConfig
from lgdk.errors import UserError
from lgdk.infer.precision import apply_precision, resolve_precision
from lgdk.models.checkpoint import load_checkpoint, read_config
from lgdk.models.network import LGDK
from lgdk.shipped import default_checkpoint


def resolve_device(device: str | None) -> str:
    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA GPU is available; use "
                        "--device cpu")
    if device != "cpu" and not device.startswith("cuda"):
        raise UserError(f"unknown device '{device}'; use cpu or cuda")
    return device


def load_models(checkpoints: list[str] | None = None, device: str = "cpu",
                **given) -> tuple[list[LGDK], InferenceConfig]:
    """Checkpoints (default: the shipped model) ready for inference, and the settings to
    run them at: the first checkpoint's own, with `given` (InferenceConfig fields; None:
    not given) on top. Every model reads its memory with those settings' top_k (the sparse
    form on a CPU), runs `LGDK.optimize_for_inference` and the settings' precision
    (`lgdk.infer.precision`: bfloat16 on a CPU with AMX, int8 on one with AVX2, unless
    they say otherwise)."""
    paths = [Path(c) for c in checkpoints] if checkpoints else [default_checkpoint()]
    settings = read_config(paths[0]).inference.with_overrides(**given)
    settings = size_for_precision(settings, device, size_given=given.get("size") is not None)
    return [load_for_inference(p, settings, device) for p in paths], settings


def size_for_precision(settings: InferenceConfig, device: str,
                       size_given: bool = False) -> InferenceConfig:
    """The settings with `cpu_float32_size` as their size where the model will run in
    float32 on a CPU and no size was given: the slowest arithmetic gets the smaller
    size, so that a frame costs about the same on every CPU (experiments/performance-log.md)."""
    if (size_given or not settings.cpu_float32_size or torch.device(device).type != "cpu"
            or resolve_precision(settings, device) != "float32"):
        return settings
    return settings.with_overrides(size=settings.cpu_float32_size)


def load_for_inference(path: Path, settings: InferenceConfig, device: str) -> LGDK:
    model, _ = load_checkpoint(path, top_k=settings.top_k, sparse_read=device == "cpu")
    model = model.to(device).eval()
    model.optimize_for_inference()
    apply_precision(model, resolve_precision(settings, device), device)
    if device == "cpu":
        model = model.to(memory_format=torch.channels_last)
    return model
