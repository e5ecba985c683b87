"""What several commands share: the inference-settings flags and loading the models."""

from __future__ import annotations

import argparse
import dataclasses

from lgdk.config import ADAPT_PARTS, InferenceConfig
from lgdk.errors import UserError

ADAPT_STEPS = 30  # `--adapt` with no number

# Flags of the inference settings; every default is "not given" (None): the model's own
# settings (saved in its checkpoint, `InferenceConfig`) apply unless a flag says otherwise.
SETTING_FLAGS = {
    "size": "processing shorter side in pixels, 0 for the frames' own (default: the model's)",
    "top_k": "memory read over the k best memory positions, 0 for all (default: the model's)",
    "mem_every": "a memory frame every N frames (default: the model's)",
    "max_memory": "memory frames kept besides the given masks: memory stays flat on any "
                  "length (default: the model's)",
    "encode_every": "also encode every N-th frame as the local (previous-frame) memory "
                    "(default: the model's); 1: every frame (STM's temporary memory, "
                    "slower); 0: memory frames only (fastest; objects may swap identities)",
    "max_objects": "at most this many objects (default: the model's)",
}


def add_setting_flags(p: argparse.ArgumentParser, augmentation: bool = True) -> None:
    for name, text in SETTING_FLAGS.items():
        p.add_argument("--" + name.replace("_", "-"), type=int, default=None, help=text)
    p.add_argument("--window", type=float, default=None,
                   help="motion window: an object's mask fades beyond this many object sizes "
                        "from where it was in the previous frame, 0 for off (default: the "
                        "model's)")
    p.add_argument("--amp", action="store_const", const=True, default=None,
                   help="mixed precision (GPU)")
    if augmentation:
        p.add_argument("--flip", action="store_const", const=True, default=None,
                       help="also process the mirrored frames and average")
        p.add_argument("--scales", default=None,
                       help="shorter-side sizes to average, e.g. 480,600")
        p.add_argument("--adapt", dest="adapt_steps", type=int, nargs="?", const=ADAPT_STEPS,
                       default=None, metavar="STEPS",
                       help=f"fine-tune a copy of the model on each given mask first "
                            f"(default {ADAPT_STEPS} steps; slower, for accuracy)")
        p.add_argument("--adapt-part", default=None, choices=ADAPT_PARTS,
                       help="what --adapt trains (default: the model's)")
        p.add_argument("--adapt-lr", type=float, default=None,
                       help="--adapt's learning rate (default: the model's)")


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
    if device != "cpu":
        raise UserError("the ONNX model runs on the CPU; use --device cpu")
    from lgdk.onnx.runtime import OnnxModel

    model = OnnxModel(args.onnx)
    return [model], model.settings.with_overrides(**given)
