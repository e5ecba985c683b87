"""Prompts -> masks with the learned prompt network (`lgdk.prompts.net`): each object
seen through its box's window; clicks alone are looked at over the whole frame first,
then again through the window of the mask that gave."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from scipy import ndimage

from lgdk.errors import UserError
from lgdk.models.checkpoint import read_tagged_metadata, write_safetensors
from lgdk.prompts.crop import Window, box_window, crop, frame_window, paste_back, prompt_maps
from lgdk.prompts.net import PromptNet, PromptNetConfig
from lgdk.prompts.spec import Box, ObjectPrompt, tight_box

FORMAT = "lgdk-prompt-net-1"
SHIPPED = "prompt.safetensors"


class PromptNetError(UserError):
    pass


def shipped_path() -> Path:
    return Path(str(resources.files("lgdk.weights") / SHIPPED))


def save_prompt_net(path: str | os.PathLike, net: PromptNet, extra: dict | None = None,
                    dtype: torch.dtype = torch.float16) -> None:
    """The head's weights and the tuned backbone stages' (the rest of the backbone is the
    ImageNet one) and the config; atomic."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().to(dtype).contiguous() for k, v in net.trained_state().items()}
    metadata = {"format": FORMAT, "config": json.dumps(net.cfg.to_dict())}
    metadata.update({k: json.dumps(v) for k, v in (extra or {}).items()})
    write_safetensors(path, state, metadata)


def load_prompt_net(path: str | os.PathLike | None = None, device: str = "cpu") -> PromptNet:
    """A prompt network file (default: the shipped one) ready for inference on `device`
    (`PromptNet.for_inference`)."""
    path = Path(path) if path else shipped_path()
    metadata = read_tagged_metadata(path, FORMAT, PromptNetError, "a prompt network file",
                                    "give one written by scripts/train_prompt_net.py")
    net = PromptNet(PromptNetConfig.from_dict(json.loads(metadata["config"])))
    try:
        net.load_trained_state(load_file(str(path)))  # its own config: nothing to widen
    except (ValueError, KeyError, RuntimeError) as exc:
        raise PromptNetError(f"{path} does not match its own config ({exc}); write it again "
                             "with scripts/train_prompt_net.py") from None
    return net.to(device).for_inference()


def _window_for(prompt: ObjectPrompt, net: PromptNet, height: int, width: int) -> Window:
    if prompt.box is not None:
        return box_window(prompt.box, net.cfg.expand, net.cfg.max_aspect)
    return frame_window(height, width)


@torch.no_grad()
def _probability(net: PromptNet, frame: np.ndarray, window: Window, box: Box | None,
                 prompt: ObjectPrompt, others: Sequence[Box]) -> np.ndarray:
    size = net.cfg.size
    device = next(net.head.parameters()).device
    rgb = torch.from_numpy(crop(frame, window, size).transpose(2, 0, 1).copy())
    rgb = rgb.float().div(255)[None].to(device)  # (1, 3, S, S)
    maps = prompt_maps(window, size, box, prompt.clicks, others)
    maps = torch.from_numpy(maps)[None].to(device)  # (1, PROMPT_CHANNELS, S, S)
    probability = torch.sigmoid(net(rgb, maps))[0, 0].float().cpu().numpy()  # (S, S)
    return paste_back(probability, window, *frame.shape[:2])


def learned_probability(net: PromptNet, frame: np.ndarray, prompt: ObjectPrompt,
                        others: Sequence[Box] = ()) -> np.ndarray:
    """frame: (H, W, 3) uint8 RGB -> (H, W) float32 probability of the prompted object;
    others: the boxes of the frame's other objects, whose pixels it should leave them."""
    height, width = frame.shape[:2]
    probability = _probability(net, frame, _window_for(prompt, net, height, width),
                               prompt.box, prompt, others)
    found = _clicked_pieces(probability >= 0.5, prompt) if prompt.box is None else None
    if found is not None and found.any():  # again, through the window of what was found
        window = box_window(tight_box(found), net.cfg.expand, net.cfg.max_aspect)
        probability = _probability(net, frame, window, None, prompt, others)
    return probability


def _clicked_pieces(mask: np.ndarray, prompt: ObjectPrompt) -> np.ndarray:
    """The connected pieces of a (H, W) bool mask that hold a positive click (all of it
    when none does): over a whole frame, a click finds every salient thing, and the one
    clicked is the piece under the click."""
    pieces, count = ndimage.label(mask)
    height, width = mask.shape
    clicked = {pieces[min(int(c.y), height - 1), min(int(c.x), width - 1)]
               for c in prompt.clicks if c.positive} - {0}
    return np.isin(pieces, list(clicked)) if clicked else mask
