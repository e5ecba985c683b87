"""A convolution of two inputs side by side, split into one convolution of each.

Where a network convolves `cat([per_object, per_frame], dim=1)` (the decoder's entry:
each object's readout beside the query's value; the memory encoder's fusion: the
query's f16 beside each object's mask features), the convolution is linear in its input:

    conv(cat(a, b)) = conv_a(a) + conv_b(b)   (zero padding, the bias in one of them)

so the per-frame input's term is computed once a frame and added to every object's,
instead of once per object. `SplitInputConv` holds the two convolutions (plain
`nn.Conv2d`s, so that int8 conversion and activation fusion reach them); its `forward`
takes the concatenated input and gives the same numbers as the convolution it replaced
(what a graph export records), `shared`/`own`/`with_shared` the factored form.
"""

from __future__ import annotations

import torch
from torch import nn

from lgdk.models.tensor_layout import add_per_frame


def _part(conv: nn.Conv2d, channels: slice, bias: bool) -> nn.Conv2d:
    """The convolution of `conv` restricted to its input channels `channels`."""
    weight = conv.weight[:, channels]
    part = nn.Conv2d(weight.shape[1], conv.out_channels, conv.kernel_size, conv.stride,
                     conv.padding, conv.dilation, bias=bias and conv.bias is not None)
    part = part.to(device=weight.device, dtype=weight.dtype)
    part.weight.data.copy_(weight)
    if part.bias is not None:
        part.bias.data.copy_(conv.bias)
    return part


class SplitInputConv(nn.Module):
    """`conv` (ungrouped, zero padding) on an input of `split` + rest channels as two
    convolutions: `first` on channels [0, split), `second` on the rest. The per-frame
    part (`shared_first` says which) carries the bias."""

    def __init__(self, conv: nn.Conv2d, split: int, shared_first: bool) -> None:
        super().__init__()
        if conv.groups != 1 or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError("SplitInputConv splits ungrouped, zero-padded convolutions")
        if not 0 < split < conv.in_channels:
            raise ValueError(f"split {split} is outside 1..{conv.in_channels - 1}")
        self.split, self.shared_first = split, shared_first
        self.first = _part(conv, slice(0, split), bias=shared_first)
        self.second = _part(conv, slice(split, None), bias=not shared_first)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The whole input (B, Cin, H, W), as the original convolution."""
        return self.first(x[:, :self.split]) + self.second(x[:, self.split:])

    def shared(self, x: torch.Tensor) -> torch.Tensor:
        """The per-frame input's term (B, Cout, H', W'), bias included."""
        return (self.first if self.shared_first else self.second)(x)

    def own(self, x: torch.Tensor) -> torch.Tensor:
        """The per-object input's term (B*N, Cout, H', W'), no bias."""
        return (self.second if self.shared_first else self.first)(x)

    def with_shared(self, own_input: torch.Tensor, shared: torch.Tensor) -> torch.Tensor:
        """The convolution of each object's input (B*N, Cown, H, W) beside the frame's,
        given the frame's term `shared` (B, Cout, H', W') -> (B*N, Cout, H', W')."""
        return add_per_frame(self.own(own_input), shared)
