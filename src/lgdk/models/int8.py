"""int8 convolutions for CPU inference (`InferenceConfig.precision: int8`).

CPUs with VNNI (AVX-512 VNNI or AVX-VNNI: Intel Cascade Lake and later, AMD Zen 4 and
later) multiply 8-bit integers four to a 32-bit lane in one instruction. oneDNN's int8
convolution (`torch.ops.onednn.qconv_pointwise`, the operator PyTorch's own compiler
lowers quantized convolutions to) ran a 3x3 convolution 512->64 (dilation 6) at 30x54 in
0.42 ms against 1.70 in float32 on a 2-core AMD EPYC with AVX-512 VNNI, 256->256 at
30x54 in 0.97 against 3.84 (experiments/performance-log.md).

`Int8Conv2d` replaces a float convolution (and the ReLU/ReLU6 fused into it): its weights
are quantized once, per output channel, symmetric, to int8 and packed for oneDNN; each
call quantizes its input per tensor to uint8 with a scale taken from that input's own
range (dynamic: no calibration data, the scale follows every frame), and oneDNN returns
float32 with the bias and activation applied, so the layers around it see float32 as
before. A layer's error was about 0.7% of its output's norm on random inputs (tests
compare each layer with its float original).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from lgdk.models.fused_activation import ConvActivation
from lgdk.models.same_padding import StaticSameConv2d, same_padding
from lgdk.runtime import cpu_flags


def cpu_has_vnni() -> bool:
    """Whether this CPU has 8-bit dot-product instructions (AVX-512 VNNI or AVX-VNNI)."""
    return bool({"avx512_vnni", "avx_vnni"} & cpu_flags())


def cpu_has_int8_products() -> bool:
    """Whether this CPU multiplies 8-bit integers in vectors (x86 AVX2 and later, VNNI or
    not): where oneDNN's int8 kernels beat float32 (experiments/performance-log.md)."""
    return cpu_has_vnni() or "avx2" in cpu_flags()


def activation_max() -> int:
    """The largest uint8 activation code: 255 with VNNI; 127 without, where oneDNN sums
    pairs of 8-bit products in 16 bits (AVX2's vpmaddubsw), which 8-bit activations can
    overflow (PyTorch's fbgemm reduces the range the same way)."""
    return 255 if cpu_has_vnni() else 127


def int8_available() -> bool:
    """Whether this PyTorch build has oneDNN's int8 convolution."""
    return (torch.backends.mkldnn.is_available()
            and hasattr(torch.ops.onednn, "qconv_pointwise")
            and hasattr(torch.ops.onednn, "qconv_prepack"))


def _quantize_weight(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-output-channel symmetric int8: (int8 weight, float32 scales (Cout,))."""
    scale = weight.detach().abs().amax(dim=(1, 2, 3)).float().clamp_min(1e-12) / 127
    q = torch.round(weight.detach().float() / scale[:, None, None, None]).clamp_(-127, 127)
    return q.to(torch.int8), scale


def quantize_input(x: torch.Tensor, qmax: int) -> tuple[torch.Tensor, float, int]:
    """x (float) -> (uint8 tensor of x's shape and layout, scale, zero point): affine per
    tensor over x's own range (which always includes 0, so zero padding is exact), codes
    0..qmax (`activation_max`)."""
    low = min(float(x.amin()), 0.0)
    high = max(float(x.amax()), 0.0)
    scale = max(high - low, 1e-8) / qmax
    zero_point = int(round(-low / scale))
    q = x.mul(1.0 / scale)
    q.add_(zero_point + 0.5).clamp_(0, qmax)  # the cast truncates: + 0.5 rounds
    return q.to(torch.uint8), scale, zero_point


class Int8Conv2d(nn.Module):
    """A 2-D convolution (zero padding, any stride, dilation and groups; TensorFlow-style
    "same" ones too) with an optional fused ReLU or ReLU6, run as oneDNN's int8
    convolution with float32 output. Inference only; CPU float32 tensors."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.original = module  # kept for `revert_int8` (a graph export) and deep copies
        conv, self.attr, self.scalars = module, "none", []
        if isinstance(module, ConvActivation):
            conv, self.attr, self.scalars = module.conv, module.attr, module.scalars
        self.stride = list(conv.stride)
        self.dilation = list(getattr(conv, "dilation", (1, 1)))
        self.groups = conv.groups
        self.same = isinstance(conv, StaticSameConv2d)  # kernel chosen by the input size
        self.padding = None if self.same else list(conv.padding)
        self.kernel_size = tuple(conv.kernel_size)
        weights = ([getattr(conv, f"weight_{h}{w}") for h in (0, 1) for w in (0, 1)]
                   if self.same else [conv.weight])
        self.bias = None if conv.bias is None else conv.bias.detach().float()
        self.out_channels = weights[0].shape[0]
        self.packed: list[torch.Tensor] = []
        for weight in weights:
            q, scale = _quantize_weight(weight)
            self.w_scale = scale  # the same for every variant (the extra taps are zero)
            padding = self.padding or [(k - 1) // 2 for k in q.shape[-2:]]
            self.packed.append(torch.ops.onednn.qconv_prepack(
                q, scale, 1.0, 0, self.stride, padding, self.dilation, self.groups, None))
        self.w_zero = torch.zeros(self.out_channels, dtype=torch.long)
        self.qmax = activation_max()  # decided once, for this CPU

    def __deepcopy__(self, memo: dict) -> Int8Conv2d:
        return Int8Conv2d(copy.deepcopy(self.original, memo))  # oneDNN's packing anew

    def _variant(self, x: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
        if not self.same:
            return self.packed[0], self.padding
        pads = [same_padding(size, kernel, stride) for size, kernel, stride
                in zip(x.shape[-2:], self.kernel_size, self.stride)]
        (top, bottom), (left, right) = pads
        return self.packed[(bottom - top) * 2 + (right - left)], [bottom, right]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        packed, padding = self._variant(x)
        q, scale, zero_point = quantize_input(x, self.qmax)
        return torch.ops.onednn.qconv_pointwise(
            q, scale, zero_point, packed, self.w_scale, self.w_zero, self.bias,
            self.stride, padding, self.dilation, self.groups, 1.0, 0, torch.float32,
            self.attr, self.scalars, None)


def _convertible(module: nn.Module) -> bool:
    inner = module.conv if isinstance(module, ConvActivation) else module
    if isinstance(inner, StaticSameConv2d):
        return True
    return (type(inner) is nn.Conv2d and inner.padding_mode == "zeros"
            and not isinstance(inner.padding, str))


@torch.no_grad()
def convert_to_int8(module: nn.Module, leave: tuple[type, ...] = ()) -> int:
    """Every float convolution in `module` (after `fuse_conv_activations`, with the
    activation fused into it) becomes an `Int8Conv2d`, in place, except inside modules of
    the types `leave`. Returns the number converted."""
    converted = 0
    for name, child in list(module.named_children()):
        if _convertible(child):
            setattr(module, name, Int8Conv2d(child))
            converted += 1
        elif not isinstance(child, (Int8Conv2d, *leave)):
            converted += convert_to_int8(child, leave)
    return converted


def revert_int8(module: nn.Module) -> int:
    """Undo `convert_to_int8` in place: each `Int8Conv2d` becomes its float original."""
    count = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, Int8Conv2d):
                setattr(parent, name, child.original)
                count += 1
    return count
