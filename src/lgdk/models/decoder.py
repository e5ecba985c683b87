"""ASPP and the STM-style refinement decoder (16 -> 8 -> 4)."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from lgdk.models.split_input import SplitInputConv
from lgdk.models.tensor_layout import add_per_frame, memory_format_of, repeat_objects


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

    def forward(self, x: torch.Tensor, mean: torch.Tensor | None = None,
                terms: list[torch.Tensor] | None = None) -> torch.Tensor:
        """x: (B, in_dim, h, w); mean: (B, in_dim, 1, 1), the image pooling's input when x
        is a crop of a larger map (its mean; without a reduction only). With the frame's
        `terms` (a split entry), x and mean are each object's part only (`from_terms`)."""
        if terms is not None:
            return self.from_terms(x, terms, mean)
        if self.reduce is not None:
            x = F.relu(self.reduce(x))  # (B, reduce, h, w)
        return self._pyramid(x, mean)

    def _pyramid(self, x: torch.Tensor, mean: torch.Tensor | None) -> torch.Tensor:
        """The branches and the image pooling on the reduced (or plain) input, fused."""
        outs = [F.relu(b(x)) for b in self.branches]
        if mean is None:
            mean = x.mean(dim=(2, 3), keepdim=True)
        return self._fused(outs, F.relu(self.pool(mean)))

    def _fused(self, outs: list[torch.Tensor], pooled: torch.Tensor) -> torch.Tensor:
        """The branches' maps and the image pooling (B, branch, 1, 1), spread over the
        map, concatenated and fused."""
        pooled = pooled.expand(-1, -1, outs[0].shape[2], outs[0].shape[3])
        outs = [*outs, pooled.contiguous(memory_format=memory_format_of(outs[0]))]
        return self.fuse(torch.cat(outs, dim=1))

    def split_input(self, split: int) -> None:
        """Inference: the input's first `split` channels are each object's, the rest the
        frame's (`SplitInputConv`): the layers that read the input compute the frame's
        part once (`frame_terms`) and each object's apart (`from_terms`)."""
        if self.reduce is not None:
            self.reduce = SplitInputConv(self.reduce, split, shared_first=False)
            return
        self.branches = nn.ModuleList(SplitInputConv(b, split, False) for b in self.branches)
        self.pool = SplitInputConv(self.pool, split, shared_first=False)

    @property
    def is_split(self) -> bool:
        return isinstance(self.reduce if self.reduce is not None else self.pool,
                          SplitInputConv)

    def frame_terms(self, shared: torch.Tensor) -> list[torch.Tensor]:
        """The frame's input (B, Cin - split, h, w) -> its terms: the reduction's, or each
        branch's (B, branch, h, w) and the image pooling's (B, branch, 1, 1), last."""
        if self.reduce is not None:
            return [self.reduce.shared(shared)]
        terms = [b.shared(shared) for b in self.branches]
        return [*terms, self.pool.shared(shared.mean(dim=(2, 3), keepdim=True))]

    def from_terms(self, own: torch.Tensor, terms: list[torch.Tensor],
                   own_mean: torch.Tensor | None = None) -> torch.Tensor:
        """`forward` of cat(own, the frame's input), given the frame's `terms`: own
        (B*N, split, h, w); own_mean (B*N, split, 1, 1), own's mean over the whole map
        when own is a crop of it (the frame's terms are then cropped too)."""
        if self.reduce is not None:
            return self._pyramid(F.relu(self.reduce.with_shared(own, terms[0])), None)
        outs = [F.relu(b.with_shared(own, t)) for b, t in zip(self.branches, terms)]
        mean = own.mean(dim=(2, 3), keepdim=True) if own_mean is None else own_mean
        return self._fused(outs, F.relu(self.pool.with_shared(mean, terms[-1])))


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
        """skip_feat: (B, D, H, W) from skip_features, each frame's once (or (B*N, ...));
        coarse: (B*N, Cin, H/2, W/2) -> (B*N, D, H, W)."""
        up = F.interpolate(
            self.coarse(coarse), size=skip_feat.shape[-2:], mode="bilinear", align_corners=False
        )
        return self.block(add_per_frame(up, skip_feat))


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

    def split_entry(self, readout_dim: int) -> bool:
        """Inference: the entry (an ASPP) computes the query value's part of its input once
        a frame instead of once per object (`ASPP.split_input`; the same numbers). Returns
        whether it did (a plain 1x1 entry stays as it is)."""
        if not isinstance(self.entry, ASPP) or self.entry.is_split:
            return False
        self.entry.split_input(readout_dim)
        return True

    def frame(self, value: torch.Tensor, f8: torch.Tensor, f4: torch.Tensor) -> FrameFeatures:
        """The object-independent part, once per frame: the query's value (B, Cv, h, w)
        with its mean, the entry's terms of it (a split entry), and the skips
        (B, dim/2, H/8, W/8) and (B, dim/4, H/4, W/4)."""
        entry = self.entry
        terms = entry.frame_terms(value) if isinstance(entry, ASPP) and entry.is_split else None
        return FrameFeatures(value, value.mean(dim=(2, 3), keepdim=True), terms,
                             self.refine8.skip_features(f8), self.refine4.skip_features(f4))

    def objects(self, readout: torch.Tensor, frame: FrameFeatures,
                others16: torch.Tensor | None = None,
                readout_mean: torch.Tensor | None = None) -> torch.Tensor:
        """The per-object part: readout (B*N, Cv, h, w) of the region of `frame` (the whole
        map, or `FrameFeatures.crops`) -> (B*N, dim/4, 4h, 4w); readout_mean:
        (B*N, Cv, 1, 1), the readout's mean over the whole map when it is a crop of it
        (`decodes_crops`)."""
        if frame.entry is not None:
            x = self.entry(readout, readout_mean, frame.entry)
        else:
            x16 = torch.cat([readout, repeat_objects(frame.value, readout.shape[0]
                                                     // frame.value.shape[0])], dim=1)
            x16 = x16.contiguous(memory_format=memory_format_of(frame.value))
            mean16 = None if readout_mean is None else torch.cat(
                [readout_mean, frame.value_mean.expand(readout.shape[0], -1, -1, -1)], dim=1)
            x = self.entry(x16, mean16) if mean16 is not None else self.entry(x16)
        if self.others is not None:
            x = x + self.others(others16)
        x = self.compress(x)
        x = self.refine8(frame.s8, x)
        return self.refine4(frame.s4, x)


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


class FrameFeatures(NamedTuple):
    """What every object of a frame decodes from (`Decoder.frame`)."""

    value: torch.Tensor  # (B, Cv, h, w) the query's value, beside each readout
    value_mean: torch.Tensor  # (B, Cv, 1, 1) its mean over the whole map
    entry: list[torch.Tensor] | None  # a split entry's terms of the value (ASPP.frame_terms)
    s8: torch.Tensor  # (B, dim/2, 2h, 2w)
    s4: torch.Tensor  # (B, dim/4, 4h, 4w)

    def crops(self, cells: list[tuple[int, int, int, int]]) -> FrameFeatures:
        """The features of each object's stride-16 cells (r0, r1, c0, c1), one size for
        all, stacked (n, ...); the means stay the whole map's, and so does an entry's
        image-pooling term (1x1)."""

        def cut(x: torch.Tensor, scale: int) -> torch.Tensor:
            if x.shape[-1] == 1 and x.shape[-2] == 1:
                return x
            parts = [x[0, :, scale * r0:scale * r1, scale * c0:scale * c1]
                     for r0, r1, c0, c1 in cells]
            return torch.stack(parts).contiguous(memory_format=memory_format_of(x))

        entry = None if self.entry is None else [cut(t, 1) for t in self.entry]
        return FrameFeatures(cut(self.value, 1), self.value_mean, entry,
                             cut(self.s8, 2), cut(self.s4, 4))
