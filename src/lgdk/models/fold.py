"""Folding frozen BatchNorm layers into the convolutions before them, for inference.

In eval mode a BatchNorm is an affine map per channel, y = a * x + b, so the convolution
that feeds it can absorb it: W' = a * W, bias' = a * bias + b. The network computes the
same numbers with one pass over memory fewer per layer (the backbone of the default model:
about a quarter less time on a CPU, see experiments/performance-log.md).
"""

from __future__ import annotations

import torch
from torch import nn


def _bn_scale_shift(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    return scale, shift


def _after_bn(bn: nn.BatchNorm2d) -> nn.Module:
    """What is left of a norm layer once its affine part is folded: timm's BatchNormAct2d
    also holds a dropout and an activation; a plain BatchNorm2d leaves nothing."""
    rest = [m for name in ("drop", "act") if isinstance(m := getattr(bn, name, None), nn.Module)]
    return nn.Sequential(*rest) if rest else nn.Identity()


@torch.no_grad()
def fold_batchnorm(module: nn.Module) -> int:
    """Fold every BatchNorm2d that directly follows a Conv2d among its siblings (the order
    in which timm's CNNs apply them) into that convolution, in place. Returns the count.
    Call on a model in eval mode; check the result (`Backbone.fold_batchnorm` does)."""
    folded = 0
    for parent in list(module.modules()):
        children = list(parent.named_children())
        for (_, conv), (bn_name, bn) in zip(children, children[1:]):
            if not (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)):
                continue
            if bn.running_var is None or conv.out_channels != bn.num_features:
                continue
            scale, shift = _bn_scale_shift(bn)
            conv.weight.mul_(scale.view(-1, 1, 1, 1).to(conv.weight.dtype))
            bias = conv.bias if conv.bias is not None else torch.zeros_like(shift)
            conv.bias = nn.Parameter((bias * scale + shift).to(conv.weight.dtype))
            setattr(parent, bn_name, _after_bn(bn))
            folded += 1
    return folded
