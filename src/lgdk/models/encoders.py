"""Query encoder (frame) and memory encoders (frame + object mask), the latter registered
by name (`model.memory_encoder`): each builder receives the model config and the query
backbone's channel record, as detectron2's heads receive a ShapeSpec.

Every memory encoder maps (frame (B, 3, H, W), the query's f16 (B, C16, h, w), masks
(B, N, H, W)) -> values (B, N, Cv, h, w), and says whether it reads the frame itself
(`reads_frame`: a second backbone) or only the query's f16 (what ONNX export supports).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from lgdk.config import ConfigError, ModelConfig
from lgdk.models.backbones import Backbone, BackboneChannels
from lgdk.models.decoder import ResBlock
from lgdk.models.split_input import SplitInputConv
from lgdk.models.tensor_layout import memory_format_of, repeat_objects


class QueryFeatures(NamedTuple):
    """Everything the model needs from one frame's query encoding."""

    f4: torch.Tensor  # (B, C4, H/4, W/4) skip
    f8: torch.Tensor  # (B, C8, H/8, W/8) skip
    f16: torch.Tensor  # (B, C16, h, w) backbone features
    key: torch.Tensor  # (B, Ck, h, w) memory-read key
    value: torch.Tensor  # (B, Cv, h, w) the query's own feature, beside the readout


class QueryEncoder(nn.Module):
    def __init__(self, backbone: Backbone, key_dim: int, value_dim: int) -> None:
        super().__init__()
        self.backbone = backbone
        c16 = backbone.channels.c16
        self.key_proj = nn.Conv2d(c16, key_dim, 3, padding=1)
        self.value_proj = nn.Conv2d(c16, value_dim, 3, padding=1)

    def forward(self, frame: torch.Tensor) -> QueryFeatures:
        """frame: (B, 3, H, W) RGB in 0..1, H and W multiples of 16."""
        f4, f8, f16 = self.backbone(frame)
        return QueryFeatures(f4, f8, f16, self.key_proj(f16), self.value_proj(f16))


def other_objects(masks: torch.Tensor) -> torch.Tensor:
    """For each object, the union (sum, clipped) of all the other objects. (B, N, H, W)."""
    return (masks.sum(dim=1, keepdim=True) - masks).clamp(0, 1)


class FullMemoryEncoder(nn.Module):
    """The paper's: a backbone of the query encoder's architecture on frame + masks."""

    reads_frame = True

    def __init__(self, backbone: Backbone, value_dim: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.value_proj = ResBlock(backbone.channels.c16, value_dim)

    def forward(
        self, frame: torch.Tensor, f16: torch.Tensor, masks: torch.Tensor
    ) -> torch.Tensor:
        """frame: (B, 3, H, W); masks: (B, N, H, W) -> values (B, N, Cv, h, w)."""
        b, n = masks.shape[:2]
        x = torch.cat(
            [
                frame.unsqueeze(1).expand(-1, n, -1, -1, -1),
                masks.unsqueeze(2),
                other_objects(masks).unsqueeze(2),
            ],
            dim=2,
        ).flatten(0, 1)  # (B*N, 5, H, W)
        _, _, f16 = self.backbone(x)
        value = self.value_proj(f16)
        return value.view(b, n, *value.shape[1:])

    def split_input(self) -> bool:
        """Nothing to split (see `FastMemoryEncoder.split_input`)."""
        return False


def mask_features(size: tuple[int, int], masks: torch.Tensor, mask_net: nn.Module,
                  pool: int = 1) -> torch.Tensor:
    """`mask_net`'s features of each object's mask and the other objects' (area-pooled by
    `pool` first), at the stride-16 `size` (h, w). masks (B, N, H, W) -> (B*N, Cm, h, w)."""
    x = torch.stack([masks, other_objects(masks)], dim=2).flatten(0, 1)  # (B*N, 2, H, W)
    m16 = mask_net(F.avg_pool2d(x, pool) if pool > 1 else x)
    if m16.shape[-2:] != tuple(size):
        m16 = F.interpolate(m16, size=size, mode="bilinear", align_corners=False)
    return m16


def f16_with_mask_features(f16: torch.Tensor, masks: torch.Tensor,
                           mask_net: nn.Module, pool: int = 1) -> torch.Tensor:
    """The frame's f16 beside `mask_features`. masks (B, N, H, W) -> (B*N, C16+Cm, h, w)."""
    m16 = mask_features(f16.shape[-2:], masks, mask_net, pool)
    return torch.cat([repeat_objects(f16, masks.shape[1]), m16], dim=1)


class LightMemoryEncoder(nn.Module):
    """STCN/XMem-style: a small CNN on the masks, fused with the frame's query features."""

    reads_frame = False

    def __init__(self, c16: int, value_dim: int, width: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_dim = 2
        for i in range(4):  # four stride-2 convs: stride 16
            out_dim = width * (2**i)
            layers += [nn.Conv2d(in_dim, out_dim, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
            in_dim = out_dim
        self.mask_net = nn.Sequential(*layers)
        self.fuse = ResBlock(c16 + in_dim, value_dim)
        self.out = ResBlock(value_dim, value_dim)

    def forward(
        self, frame: torch.Tensor, f16: torch.Tensor, masks: torch.Tensor
    ) -> torch.Tensor:
        """masks: (B, N, H, W) -> values (B, N, Cv, h, w), reusing the query's f16."""
        b, n = masks.shape[:2]
        value = self.out(self.fuse(f16_with_mask_features(f16, masks, self.mask_net)))
        return value.view(b, n, *value.shape[1:])

    def split_input(self) -> bool:
        """Nothing to split (see `FastMemoryEncoder.split_input`)."""
        return False


class FastMemoryEncoder(nn.Module):
    """A cheaper light encoder (about 1 of the light one's 5 GMAC at 480p): the masks are
    area-pooled to stride 4 before two strided convs, the fusion with the query's f16 is a
    1x1 conv, and one 3x3 conv refines it (residual)."""

    reads_frame = False

    def __init__(self, c16: int, value_dim: int, width: int = 32) -> None:
        super().__init__()
        self.mask_net = nn.Sequential(
            nn.Conv2d(2, width // 2, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width // 2, width, 3, stride=2, padding=1), nn.ReLU(inplace=True),
        )
        self.mask_channels = width
        self.fuse = nn.Conv2d(c16 + width, value_dim, 1)
        self.refine = nn.Conv2d(value_dim, value_dim, 3, padding=1)

    def forward(
        self, frame: torch.Tensor, f16: torch.Tensor, masks: torch.Tensor
    ) -> torch.Tensor:
        """masks: (B, N, H, W) -> values (B, N, Cv, h, w), reusing the query's f16."""
        b, n = masks.shape[:2]
        if isinstance(self.fuse, SplitInputConv):  # the frame's f16 fused once
            m16 = mask_features(f16.shape[-2:], masks, self.mask_net, pool=4)
            fused = self.fuse.with_shared(m16.contiguous(memory_format=memory_format_of(f16)),
                                          self.fuse.shared(f16))
        else:
            fused = self.fuse(f16_with_mask_features(f16, masks, self.mask_net, pool=4))
        value = fused + self.refine(F.relu(fused))
        return value.view(b, n, *value.shape[1:])

    def split_input(self) -> bool:
        """Inference: the fusion's f16 part computed once a frame instead of once per
        object (`SplitInputConv`; the same numbers). Returns whether it changed."""
        if isinstance(self.fuse, SplitInputConv):
            return False
        self.fuse = SplitInputConv(self.fuse, self.fuse.in_channels - self.mask_channels,
                                   shared_first=True)
        return True


MemoryEncoderBuilder = Callable[[ModelConfig, BackboneChannels], nn.Module]

MEMORY_ENCODERS: dict[str, MemoryEncoderBuilder] = {
    "full": lambda cfg, channels: FullMemoryEncoder(
        Backbone(cfg.backbone, 5, cfg.pretrained, cfg.weights_file), cfg.value_dim),
    "light": lambda cfg, channels: LightMemoryEncoder(channels.c16, cfg.value_dim),
    "fast": lambda cfg, channels: FastMemoryEncoder(channels.c16, cfg.value_dim),
}


def build_memory_encoder(cfg: ModelConfig, channels: BackboneChannels) -> nn.Module:
    """The registered memory encoder `cfg.memory_encoder`."""
    if cfg.memory_encoder not in MEMORY_ENCODERS:
        raise ConfigError(f"model.memory_encoder must be one of "
                          f"{', '.join(MEMORY_ENCODERS)}, not '{cfg.memory_encoder}'")
    return MEMORY_ENCODERS[cfg.memory_encoder](cfg, channels)
