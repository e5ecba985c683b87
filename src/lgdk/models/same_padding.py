"""TensorFlow-style "same" strided convolutions without a padded copy of their input.

timm's `tf_*` models pad the input of every strided convolution on the fly (`F.pad`, then
an unpadded convolution). The padding is asymmetric when the total is odd: one row more at
the bottom than at the top. Each pad writes a full copy of the input; for the default
model's widest one (96 channels at stride 2) that copy took 5-7 ms of a 124 ms frame.

The same numbers come from the convolution's own (symmetric) padding: per dimension, a
total padding p = before + after with after = before + (p mod 2) equals symmetric padding
`after` with one zero tap put in front of the kernel (the extra row read at the top meets
that zero). So y[i] = sum_j w[j] x[s*i + j - before] either way; tested to be identical.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

try:  # timm's class for dynamically padded convolutions
    from timm.layers.conv2d_same import Conv2dSame
except ImportError:  # pragma: no cover - older timm layouts
    Conv2dSame = None


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding (before, after) of one dimension."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class StaticSameConv2d(nn.Module):
    """A strided "same" convolution as one `F.conv2d` call with symmetric padding.

    Holds the kernel four ways (a zero tap in front along height, width, both, neither);
    the input's size picks the one whose symmetric padding equals TensorFlow's."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if conv.dilation != (1, 1):
            raise ValueError("StaticSameConv2d supports dilation 1 only")
        self.stride, self.groups = conv.stride, conv.groups
        self.kernel_size = conv.kernel_size
        weight = conv.weight.detach()
        for extra_h in (0, 1):
            for extra_w in (0, 1):
                padded = F.pad(weight, (extra_w, 0, extra_h, 0))
                self.register_buffer(f"weight_{extra_h}{extra_w}", padded, persistent=False)
        bias = conv.bias.detach() if conv.bias is not None else None
        self.register_buffer("bias", bias, persistent=False)

    def weight_and_padding(self, x: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
        """The kernel and the symmetric (height, width) padding for this input's size."""
        (top, bottom), (left, right) = (
            same_padding(size, k, s)
            for size, k, s in zip(x.shape[-2:], self.kernel_size, self.stride)
        )
        return getattr(self, f"weight_{bottom - top}{right - left}"), [bottom, right]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, padding = self.weight_and_padding(x)
        return F.conv2d(x, weight, self.bias, self.stride, padding, 1, self.groups)


@torch.no_grad()
def replace_dynamic_same_padding(module: nn.Module) -> int:
    """Inference only: swap timm's `Conv2dSame` layers (with dilation 1) in `module` for
    `StaticSameConv2d`, in place. The weights are copied, so call it after any change to
    them (BatchNorm folding). Returns the number of layers swapped."""
    if Conv2dSame is None:
        return 0
    swapped = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, Conv2dSame) and child.dilation == (1, 1):
                setattr(parent, name, StaticSameConv2d(child))
                swapped += 1
    return swapped
