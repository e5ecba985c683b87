"""Convolutions with their activation applied inside the convolution, for CPU inference.

After BatchNorm folding (`lgdk.models.fold`) timm's EfficientNet-Lite blocks are a
convolution followed by a ReLU6, which PyTorch runs as a second pass over the whole
output: 22 such passes in the Lite0 backbone, about 5.6 ms of a 480x864 frame on a 2-core
CPU. oneDNN (PyTorch's CPU convolution library) applies the clamp as the convolution
writes its output (`torch.ops.mkldnn._convolution_pointwise`, the operator PyTorch's own
compiler fuses to): the same numbers, one pass fewer (backbone 59.5 -> 55.6 ms at 480x864).
"""

from __future__ import annotations

import torch
from torch import nn

from lgdk.models.same_padding import StaticSameConv2d

FUSED_DTYPES = (torch.float32, torch.bfloat16)  # what oneDNN's fused convolution takes


def fusion_available() -> bool:
    """Whether this PyTorch build has oneDNN's convolution with a fused activation."""
    return (torch.backends.mkldnn.is_available()
            and hasattr(torch.ops.mkldnn, "_convolution_pointwise"))


def _activation(module: nn.Module) -> tuple[str, list[float]] | None:
    """oneDNN's name and scalars for a ReLU, ReLU6 or Hardtanh, alone or in a Sequential
    with Identity layers (what folding leaves of timm's BatchNormAct2d); else None."""
    layers = list(module) if isinstance(module, nn.Sequential) else [module]
    layers = [m for m in layers if not isinstance(m, nn.Identity)]
    if len(layers) != 1:
        return None
    act = layers[0]
    if isinstance(act, nn.Hardtanh):  # ReLU6 is a Hardtanh(0, 6)
        return "hardtanh", [float(act.min_val), float(act.max_val)]
    if isinstance(act, nn.ReLU):
        return "relu", []
    return None


class ConvActivation(nn.Module):
    """A float32 or bfloat16 `nn.Conv2d` (zero padding) or `StaticSameConv2d` and the
    ReLU/ReLU6 after it, as one oneDNN call on a CPU tensor; other devices and dtypes take
    the two steps."""

    def __init__(self, conv: nn.Module, act: nn.Module) -> None:
        super().__init__()
        self.conv, self.act = conv, act
        self.attr, self.scalars = _activation(act)
        self.stride = list(conv.stride)
        self.dilation = list(getattr(conv, "dilation", (1, 1)))  # StaticSameConv2d: 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not x.is_cpu or x.dtype not in FUSED_DTYPES:
            return self.act(self.conv(x))
        if isinstance(self.conv, StaticSameConv2d):  # the kernel chosen by the input's size
            weight, padding = self.conv.weight_and_padding(x)
        else:
            weight, padding = self.conv.weight, list(self.conv.padding)
        return torch.ops.mkldnn._convolution_pointwise(
            x, weight, self.conv.bias, padding, self.stride, self.dilation, self.conv.groups,
            self.attr, self.scalars, "")


def _fusable(conv: nn.Module) -> bool:
    if isinstance(conv, StaticSameConv2d):
        return True
    return (type(conv) is nn.Conv2d and conv.padding_mode == "zeros"
            and not isinstance(conv.padding, str))


@torch.no_grad()
def fuse_conv_activations(module: nn.Module) -> int:
    """Inference only: every convolution directly followed (among its siblings) by a
    ReLU/ReLU6 becomes a `ConvActivation`, the activation an Identity, in place. Call
    after BatchNorm folding. Returns the number fused (0 without oneDNN)."""
    if not fusion_available():
        return 0
    fused = 0
    for parent in list(module.modules()):
        children = list(parent.named_children())
        for (conv_name, conv), (act_name, act) in zip(children, children[1:]):
            if _activation(act) is None or not _fusable(conv):
                continue
            setattr(parent, conv_name, ConvActivation(conv, act))
            setattr(parent, act_name, nn.Identity())
            fused += 1
    return fused


def unfuse_conv_activations(module: nn.Module) -> int:
    """Undo `fuse_conv_activations` in place (a graph export records plain operators):
    each `ConvActivation` becomes its convolution and activation in sequence."""
    count = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, ConvActivation):
                setattr(parent, name, nn.Sequential(child.conv, child.act))
                count += 1
    return count
