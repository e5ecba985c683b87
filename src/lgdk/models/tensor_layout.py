"""Keeping feature maps in one memory format across the network's own reshapes.

On a CPU the convolutions run channels-last (`infer.loading.load_models`); an operation
that mixes formats (an add or a cat of a channels-last and a channels-first map) falls to
a slow path and hands the next convolution a map it must convert first. These helpers
keep the format of their input.
"""

from __future__ import annotations

import torch


def memory_format_of(x: torch.Tensor) -> torch.memory_format:
    """channels_last for a strictly channels-last 4-d tensor, else contiguous_format."""
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(
            memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def repeat_objects(x: torch.Tensor, n: int) -> torch.Tensor:
    """(B, C, H, W) -> (B*N, C, H, W): each frame's map once per object, in x's format."""
    if n == 1:
        return x
    return x.repeat_interleave(n, dim=0).contiguous(memory_format=memory_format_of(x))


def add_per_frame(per_object: torch.Tensor, per_frame: torch.Tensor) -> torch.Tensor:
    """per_object (B*N, C, H, W), frame-major as `repeat_objects` makes it, plus
    per_frame (B, C, H, W) broadcast over each frame's objects -> (B*N, C, H, W): the sum
    without a copy of the per-frame map for every object."""
    b = per_frame.shape[0]
    if b == 1:
        return per_object + per_frame
    n = per_object.shape[0] // b
    out = per_object.view(b, n, *per_object.shape[1:]) + per_frame.unsqueeze(1)
    return out.flatten(0, 1)
