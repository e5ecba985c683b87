"""What several commands share: the inference-settings flags and loading the models."""

from __future__ import annotations

import argparse
import dataclasses

from lgdk.config import ADAPT_PARTS, PRECISIONS, InferenceConfig
from lgdk.errors import UserError
from lgdk.shipped import SHIPPED_SETTINGS

ADAPT_STEPS = 30  # `--adapt` with no number
AUGMENTATION = {"flip", "scales", "adapt_steps", "adapt_part", "adapt_lr"}
FLAG_NAMES = {"adapt_steps": "--adapt"}
CHOICES = {"adapt_part": ADAPT_PARTS, "precision": PRECISIONS}


def add_device_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")


def add_checkpoint_flag(p: argparse.ArgumentParser, ensemble: bool = True) -> None:
    """--checkpoint PATH; with `ensemble`, repeated for an ensemble (a list, else one)."""
    if ensemble:
        p.add_argument("--checkpoint", action="append", default=None,
                       help="model checkpoint (repeat for an ensemble: probabilities are "
                            "averaged; default: the shipped model)")
    else:
        p.add_argument("--checkpoint", default=None,
                       help="model checkpoint (default: the shipped model)")


def setting_fields(augmentation: bool = True) -> list[dataclasses.Field]:
    """The settings that have a flag: `InferenceConfig`'s fields with help text."""
    return [f for f in dataclasses.fields(InferenceConfig) if "help" in f.metadata
            and (augmentation or f.name not in AUGMENTATION)]


def shipped_value(f: dataclasses.Field) -> str:
    value = SHIPPED_SETTINGS.get(f.name, f.default)
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def add_setting_flags(p: argparse.ArgumentParser, augmentation: bool = True) -> None:
    """A flag per inference setting, its help from `InferenceConfig`. Every flag's default
    is "not given" (None): the model's own settings (saved in its checkpoint) apply unless
    a flag says otherwise; the help gives the shipped model's (`SHIPPED_SETTINGS`)."""
    for f in setting_fields(augmentation):
        text = f"{f.metadata['help']} (default: the model's; the shipped model's: " \
               f"{shipped_value(f)})"
        flag = FLAG_NAMES.get(f.name, "--" + f.name.replace("_", "-"))
        if f.name == "adapt_steps":
            p.add_argument(flag, dest=f.name, type=int, nargs="?", const=ADAPT_STEPS,
                           default=None, metavar="STEPS",
                           help=f"{text}; --adapt alone: {ADAPT_STEPS} steps")
        elif isinstance(f.default, bool):
            p.add_argument(flag, action="store_const", const=True, default=None, help=text)
        elif f.name in CHOICES:
            p.add_argument(flag, default=None, choices=CHOICES[f.name], help=text)
        else:
            kind = str if isinstance(f.default, tuple) else type(f.default)
            p.add_argument(flag, type=kind, default=None, help=text)


def given_settings(args: argparse.Namespace) -> dict:
    """The inference settings the command line gave (the others None)."""
    names = {f.name for f in dataclasses.fields(InferenceConfig)}
    given = {k: v for k, v in vars(args).items() if k in names}
    if given.get("scales") is not None:
        given["scales"] = parse_scales(given["scales"])
    return given


def parse_scales(text: str) -> tuple[int, ...]:
    try:
        scales = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UserError(f"--scales must be integers like 480,600, not '{text}'") from None
    if not scales:
        raise UserError(f"--scales must be shorter sides like 480,600, not '{text}'")
    return scales


def load_models_and_settings(args: argparse.Namespace, device: str):
    """PyTorch models from --checkpoint (default: the shipped model), or the ONNX Runtime
    model of --onnx, and the resolved inference settings."""
    given = given_settings(args)
    if not getattr(args, "onnx", None):
        from lgdk.infer.loading import load_models

        checkpoints = args.checkpoint
        if isinstance(checkpoints, str):
            checkpoints = [checkpoints]
        return load_models(checkpoints, device, **given)
    if args.checkpoint or given.get("top_k") is not None:
        raise UserError("--onnx runs an exported graph: leave out --checkpoint and --top-k "
                        "(they were fixed at export)")
    if given.get("precision") in ("bfloat16", "int8"):
        raise UserError(f"--onnx runs an exported graph in float32: leave out --precision "
                        f"{given['precision']}")
    if device != "cpu":
        raise UserError("the ONNX model runs on the CPU; use --device cpu")
    from lgdk.onnx.runtime import OnnxModel

    if given.get("object_cells"):
        raise UserError("--object-cells chooses the processing size per video, but an ONNX "
                        "graph serves the one size it was exported at: leave out "
                        "--object-cells (or run the checkpoint without --onnx)")
    model = OnnxModel(args.onnx)
    return [model], model.settings.with_overrides(**{**given, "object_cells": 0.0})
