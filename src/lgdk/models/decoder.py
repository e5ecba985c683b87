"""ASPP and the STM-style refinement decoder (16 -> 8 -> 4)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lgdk.models.tensor_layout import memory_format_of, repeat_objects


class ResBlock(nn.Module):
    """Pre-activation residual block (STM's), with a 1x1 projection when channels change."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_dim, out_dim, 3, padding=1)
        self.conv2 = nn.Conv2d(out_dim, out_dim, 3, padding=1)
        self.project = nn.Conv2d(in_dim, out_dim, 1) if in_dim != out_dim else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.conv1(F.relu(x))
        r = self.conv2(F.relu(r))
        return self.project(x) + r


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling (DeepLab): parallel dilated convs + image pooling.
    With `reduce`, the branches see a 1x1 projection of the input to `reduce` channels
    (+ ReLU) instead of the input itself: at in_dim 512 and reduce 128, a third of the
    multiply-adds."""

    def __init__(self, in_dim: int, out_dim: int, rates: tuple[int, ...] = (2, 4, 6),
                 reduce: int = 0) -> None:
        super().__init__()
        branch = out_dim // 2
        self.reduce = nn.Conv2d(in_dim, reduce, 1) if reduce else None
        width = reduce or in_dim
        self.branches = nn.ModuleList([nn.Conv2d(width, branch, 1)])
        for rate in rates:
            self.branches.append(nn.Conv2d(width, branch, 3, padding=rate, dilation=rate))
        self.pool = nn.Conv2d(width, branch, 1)
        self.fuse = nn.Conv2d(branch * (len(rates) + 2), out_dim, 1)

    def forward(self, x: torch.Tensor, mean: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, in_dim, h, w); mean: (B, in_dim, 1, 1), the image pooling's input when x
        is a crop of a larger map (its mean; without a reduction only)."""
        if self.reduce is not None:
            x = F.relu(self.reduce(x))  # (B, reduce, h, w)
        outs = [F.relu(b(x)) for b in self.branches]
        if mean is None:
            mean = x.mean(dim=(2, 3), keepdim=True)
        pooled = F.relu(self.pool(mean))
        pooled = pooled.expand(-1, -1, x.shape[2], x.shape[3])
        outs.append(pooled.contiguous(memory_format=memory_format_of(outs[0])))
        return self.fuse(torch.cat(outs, dim=1))


class Refine(nn.Module):
    """Upsample the coarser map x2 and fuse the encoder skip of the finer stride."""

    def __init__(self, skip_dim: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.skip = nn.Conv2d(skip_dim, out_dim, 3, padding=1)
        self.skip_block = ResBlock(out_dim, out_dim)
        self.coarse = nn.Conv2d(in_dim, out_dim, 1)
        self.block = ResBlock(out_dim, out_dim)

    def skip_features(self, skip: torch.Tensor) -> torch.Tensor:
        """Object-independent part, computed once per frame. (B, Cs, H, W) -> (B, D, H, W)."""
        return self.skip_block(self.skip(skip))

    def forward(self, skip_feat: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        """skip_feat: (B*N, D, H, W) from skip_features; coarse: (B*N, Cin, H/2, W/2)."""
        up = F.interpolate(
            self.coarse(coarse), size=skip_feat.shape[-2:], mode="bilinear", align_corners=False
        )
        return self.block(skip_feat + up)


class Decoder(nn.Module):
    """(readout ++ query feature) at stride 16 -> features at stride 4 (the last block).

    With `others_dim`, each object's stride-16 features also see the other objects'
    readouts (their per-channel maximum, `others_maximum`) through a 1x1 convolution that
    starts at zero: a model gains it without changing what it computes until trained."""

    def __init__(self, in_dim: int, c8: int, c4: int, dim: int, use_aspp: bool,
                 aspp_reduce: int = 0, others_dim: int = 0) -> None:
        super().__init__()
        self.entry = (ASPP(in_dim, dim, reduce=aspp_reduce) if use_aspp
                      else nn.Conv2d(in_dim, dim, 1))
        self.others = nn.Conv2d(others_dim, dim, 1) if others_dim else None
        if self.others is not None:
            nn.init.zeros_(self.others.weight)
            nn.init.zeros_(self.others.bias)
        self.compress = ResBlock(dim, dim)
        self.refine8 = Refine(c8, dim, dim // 2)
        self.refine4 = Refine(c4, dim // 2, dim // 4)
        self.out_dim = dim // 4

    @property
    def decodes_crops(self) -> bool:
        """Whether `objects` can decode a crop as the whole map would there: its entry's
        image pooling then needs the whole map's mean, known without a reduction, and no
        other object's readout is seen."""
        entry = self.entry
        return self.others is None and (not isinstance(entry, ASPP) or entry.reduce is None)

    def forward(
        self, x16: torch.Tensor, f8: torch.Tensor, f4: torch.Tensor, n_objects: int,
        others16: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x16: (B*N, Cin, h, w); f8, f4: (B, C, ...); others16: (B*N, others_dim, h, w),
        used when the decoder has `others` -> (B*N, dim/4, H/4, W/4)."""
        s8, s4 = self.skips(f8, f4)
        return self.objects(x16, repeat_objects(s8, n_objects), repeat_objects(s4, n_objects),
                            others16)

    def skips(self, f8: torch.Tensor, f4: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The object-independent part, once per frame: (B, dim/2, H/8, W/8) and
        (B, dim/4, H/4, W/4)."""
        return self.refine8.skip_features(f8), self.refine4.skip_features(f4)

    def objects(self, x16: torch.Tensor, s8: torch.Tensor, s4: torch.Tensor,
                others16: torch.Tensor | None = None,
                mean16: torch.Tensor | None = None) -> torch.Tensor:
        """The per-object part: x16 (B*N, Cin, h, w), skips s8, s4 of the same region
        (B*N, ...) -> (B*N, dim/4, 4h, 4w); mean16: (B*N, Cin, 1, 1), x16's mean over the
        whole map when x16 is a crop of it (`decodes_crops`)."""
        x = self.entry(x16, mean16) if mean16 is not None else self.entry(x16)
        if self.others is not None:
            x = x + self.others(others16)
        x = self.compress(x)
        x = self.refine8(s8, x)
        return self.refine4(s4, x)


def others_maximum(readout: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
    """Per object, the channel-wise maximum of the other present objects' readouts; 0
    where there is no other. readout: (B, N, C, h, w); present: (B, N) bool (default:
    all) -> (B, N, C, h, w). One form for every N (an exported graph serves any count)."""
    n = readout.shape[1]
    if present is not None:
        absent = ~present[:, :, None, None, None]
        readout = readout.masked_fill(absent, float("-inf"))
    nobody = torch.full_like(readout[:, :1], float("-inf"))  # so that there are two
    top, where = torch.cat([readout, nobody], dim=1).topk(2, dim=1)  # (B, 2, C, h, w)
    objects = torch.arange(n, device=readout.device).view(1, n, 1, 1, 1)
    others = torch.where(where[:, :1] == objects, top[:, 1:], top[:, :1])  # (B, N, C, h, w)
    return others.masked_fill(torch.isinf(others), 0.0)
