"""Local and global dynamic kernels (paper eq. 2) and the head that applies them."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class KernelHead(nn.Module):
    """Turns object features into the mask logits of the decoder's output.

    With `use_local` and/or `use_global`, three FC layers map the concatenation
    C(O_G, O_{t-1}) to the weights and bias of a k x k convolution (one output channel)
    applied to that object's decoder features. With neither, it is a static k x k conv:
    the paper's "no dynamic kernel" row of Table 2.
    """

    def __init__(
        self,
        object_dim: int,
        feature_dim: int,
        use_local: bool,
        use_global: bool,
        kernel_size: int = 3,
        hidden: int = 256,
    ) -> None:
        super().__init__()
        self.use_local, self.use_global = use_local, use_global
        # one grouped convolution; `LGDK.exportable` swaps in the same numbers without a
        # group count (`dynamic_conv_ungrouped`), which a graph export needs
        self.apply_kernels = dynamic_conv
        self.feature_dim, self.kernel_size = feature_dim, kernel_size
        self.dynamic = use_local or use_global
        if not self.dynamic:
            self.static = nn.Conv2d(feature_dim, 1, kernel_size, padding=kernel_size // 2)
            return
        in_dim = object_dim * (int(use_local) + int(use_global))
        n_params = feature_dim * kernel_size * kernel_size + 1
        self.fc = nn.Sequential(
            nn.Linear(in_dim, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, n_params),
        )
        # The last layer's bias starts as an ordinary conv initialisation, its weight small:
        # at the start the head behaves like a static conv and learns to depend on objects.
        last = self.fc[-1]
        nn.init.normal_(last.weight, std=1e-3)
        fan_in = feature_dim * kernel_size * kernel_size
        bound = fan_in**-0.5
        nn.init.uniform_(last.bias, -bound, bound)

    def generate(
        self, global_feature: torch.Tensor | None, local_feature: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Eq. 2. Features: (B, N, Cv) -> weights (B*N, C, k, k), bias (B*N,)."""
        parts = []
        if self.use_global:
            parts.append(global_feature)
        if self.use_local:
            parts.append(local_feature)
        params = self.fc(torch.cat(parts, dim=-1))  # (B, N, C*k*k + 1)
        params = params.flatten(0, 1)
        k = self.kernel_size
        weight = params[:, :-1].reshape(-1, self.feature_dim, k, k)
        return weight, params[:, -1]

    def forward(
        self,
        features: torch.Tensor,
        global_feature: torch.Tensor | None,
        local_feature: torch.Tensor | None,
    ) -> torch.Tensor:
        """features: (B*N, C, H, W) -> logits (B*N, 1, H, W)."""
        if not self.dynamic:
            return self.static(features)
        weight, bias = self.generate(global_feature, local_feature)
        return self.apply_kernels(features, weight, bias)


def dynamic_conv(features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Convolve each sample with its own kernel, as one grouped convolution.

    features: (G, C, H, W); weight: (G, C, k, k); bias: (G,) -> (G, 1, H, W).
    A graph export needs a constant group count, which this is not (G = B*N objects): it
    takes `dynamic_conv_ungrouped`, the same numbers.
    """
    g, c, h, w = features.shape
    out = F.conv2d(
        features.reshape(1, g * c, h, w), weight, bias, padding=weight.shape[-1] // 2, groups=g
    )
    return out.view(g, 1, h, w)


def dynamic_conv_ungrouped(
    features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
) -> torch.Tensor:
    """`dynamic_conv` as an ordinary convolution of every sample with every kernel, keeping
    the diagonal: G times the work (G is small at inference), no group count in the graph."""
    g, _, h, w = features.shape
    every = F.conv2d(features, weight, bias, padding=weight.shape[-1] // 2)  # (G, G, H, W)
    index = torch.arange(g, device=features.device).view(g, 1, 1, 1).expand(g, 1, h, w)
    return every.gather(1, index)
