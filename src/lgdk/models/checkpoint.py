"""Checkpoints: one safetensors file holding the weights and the resolved config."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from lgdk.config import Config, ConfigError, config_from_json, config_to_json
from lgdk.errors import UserError

FORMAT = "lgdk-checkpoint-1"


class CheckpointError(UserError):
    pass


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module, cfg: Config,
                    dtype: torch.dtype | None = None, extra: dict | None = None) -> None:
    """Write atomically (temporary name, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu().contiguous()
        if dtype is not None and value.is_floating_point():
            value = value.to(dtype)
        state[key] = value
    metadata = {"format": FORMAT, "config": config_to_json(cfg)}
    metadata.update({k: json.dumps(v) for k, v in (extra or {}).items()})
    write_safetensors(path, state, metadata)


def write_safetensors(path: str | os.PathLike, state: dict[str, torch.Tensor],
                      metadata: dict[str, str]) -> None:
    """Write tensors + metadata under a temporary name, then rename (nothing half-written)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(state, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    return read_tagged_metadata(path, FORMAT, CheckpointError, "an lgdk checkpoint",
                                "give a checkpoint written by `lgdk train`")


def read_tagged_metadata(path: str | os.PathLike, expected: str, error: type[Exception],
                         what: str, fix: str) -> dict[str, str]:
    """The metadata of a safetensors file of ours, whose "format" is `expected`; any other
    file is refused with `error`, naming `what` it should be and the `fix`."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {path} not found; check the path")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise error(f"{path} is not {what} (not a safetensors file: {exc}); {fix}") from None
    if metadata.get("format") != expected:
        raise error(f"{path} is a safetensors file but not {what} (format "
                    f"{metadata.get('format')!r}, expected {expected}); {fix}")
    return metadata


def read_config(path: str | os.PathLike) -> Config:
    try:
        return config_from_json(read_metadata(path)["config"])
    except ConfigError as exc:
        raise CheckpointError(f"{path}: its config is not valid for this lgdk ({exc})") from None


def load_checkpoint(path: str | os.PathLike, map_location: str = "cpu", **build):
    """Rebuild the exact model a checkpoint was saved from (`build`: how it reads its
    memory, see `LGDK`). Returns (model, config)."""
    from lgdk.models.network import build_model

    cfg = read_config(path)
    # The checkpoint carries all weights: do not load backbone ImageNet weights again.
    model_cfg = dataclasses.replace(cfg.model, pretrained=False, weights_file=None)
    model = build_model(model_cfg, **build)
    load_weights_into(model, path, map_location)
    return model, cfg


def load_weights_into(model: torch.nn.Module, path: str | os.PathLike,
                      map_location: str = "cpu") -> None:
    """Load a checkpoint's weights into a model of the same architecture, or refuse."""
    state = load_file(str(path), device=map_location)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [k for k in own if k in state and own[k].shape != state[k].shape]
    if missing or unexpected or wrong:
        detail = (missing or unexpected or wrong)[:3]
        raise CheckpointError(
            f"{path} was saved from another architecture ({len(missing)} missing, "
            f"{len(unexpected)} unexpected, {len(wrong)} mis-shaped tensors, e.g. {detail}); "
            "use a model config that matches it"
        )
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})


def load_matching_weights(model: torch.nn.Module, path: str | os.PathLike,
                          map_location: str = "cpu") -> list[str]:
    """Load the tensors of a checkpoint whose names and shapes match the model's (to start
    a changed architecture from a trained one). Returns the model's tensors left as they
    were; refuses a checkpoint that shares nothing with the model."""
    state = load_file(str(path), device=map_location)
    own = model.state_dict()
    fits = {k: v.to(own[k].dtype) for k, v in state.items()
            if k in own and own[k].shape == v.shape}
    if not fits:
        raise CheckpointError(f"{path} shares no tensor with this model; start from a "
                              "checkpoint of a related architecture")
    model.load_state_dict(fits, strict=False)
    return sorted(set(own) - set(fits))
