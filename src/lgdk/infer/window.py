"""A motion window: where each object can be in the next frame, from where it was.

Objects move a bounded distance between frames, but a memory read matches by appearance
anywhere: a small object's mask bleeds into background that looks like it, and among
similar objects (a crowd) each object's mask spreads onto the others. The window lowers an
object's logits with their distance beyond its reach from its box in the previous frame:

    reach   = window * max(box side, its side in the given mask, frame side / 8)
    penalty = SLOPE * max(0, distance from the box along x or y - reach) / reach

so the logits are untouched within the reach and fall by SLOPE for every further reach.
An object absent from the previous frame (hidden, lost, or not yet given) has no window:
it may come back anywhere. The side in the given mask keeps the window open for an object
whose box shrank because a part of it (a paraglider's pilot under the wing) was missed for
a frame, so that the part can come back. `window = 0` turns it off.

`near` tightens the window where a pixel lies in the window of another object of about
the same size (sides within a factor SIMILAR; people in a crowd): there the reach is
`near` object sizes instead of `window`, so that a mask spreads onto a look-alike beside
it less far than into free space. An object alone, or among objects of other sizes, keeps
its plain window. Off by default: it gained on pasted crowds and lost on real ones
(experiments/log.md).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from lgdk.models.network import CELL

SLOPE = 8.0  # logits lost for every further reach beyond the window
MIN_SIDE_FRACTION = 1 / 8  # the reach of a tiny object is that of one this large
SIMILAR = 2.0  # `near`: neighbours whose side is within this factor of an object's


class Boxes(NamedTuple):
    """Each object's box in one frame: (B, N) tensors, in pixels, inclusive."""

    y0: torch.Tensor
    y1: torch.Tensor
    x0: torch.Tensor
    x1: torch.Tensor
    seen: torch.Tensor  # bool: the object has pixels in that frame

    def side(self) -> torch.Tensor:
        """(B, N) the longer side (0 for an object not seen)."""
        return torch.maximum(self.y1 - self.y0, self.x1 - self.x0)


def object_boxes(probs: torch.Tensor) -> Boxes:
    """probs: (B, N, H, W) object probabilities -> the box of each object's pixels > 0.5."""
    rows = probs.amax(dim=3) > 0.5  # (B, N, H)
    cols = probs.amax(dim=2) > 0.5  # (B, N, W)
    y0, y1 = _extent(rows)
    x0, x1 = _extent(cols)
    return Boxes(y0, y1, x0, x1, rows.any(dim=2))


def window_penalty(last: Boxes, size: tuple[int, int], window: float,
                   given_side: torch.Tensor | None = None, near: float = 0.0) -> torch.Tensor:
    """Logit offsets (B, N, H, W) for a frame of `size` (H, W): 0 within each object's
    reach of its box in the previous frame (`last`), negative beyond. `given_side`: (B, N)
    each object's side in its given mask. `near`: the window (in object sizes) where a
    pixel lies within the window of another object of about the same size (a look-alike
    in a crowd): a mask spreads onto such a neighbour less far than into free space (0:
    `window` everywhere)."""
    side = last.side() if given_side is None else torch.maximum(last.side(), given_side)
    lost_y, lost_x = _losses(last, size, window, side)  # (B, N, H), (B, N, W)
    loose = _spread(lost_y, lost_x)  # (B, N, H, W)
    if not near or last.seen.shape[1] < 2:
        return loose
    tight = _spread(*_losses(last, size, near, side))
    # where each object's window is, per axis (separable): (B, N, H) and (B, N, W)
    seen = last.seen[..., None]
    in_y, in_x = ((lost_y == 0) & seen).float(), ((lost_x == 0) & seen).float()
    ratio = side[:, :, None] / side[:, None, :].clamp(min=1)  # (B, N, N): n's side / j's
    alike = (ratio <= SIMILAR) & (ratio >= 1 / SIMILAR)
    alike &= ~torch.eye(side.shape[1], dtype=torch.bool, device=side.device)
    # how many look-alikes' windows cover each pixel, for each object: (B, N, H, W)
    covered = torch.einsum("bnj,bjy,bjx->bnyx", alike.float(), in_y, in_x)
    return torch.where(covered > 0, tight, loose)


def _losses(last: Boxes, size: tuple[int, int], window: float,
            side: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The logits each object loses along y (B, N, H) and along x (B, N, W) for `window`
    (none for an object not seen)."""
    height, width = size
    reach = _reach(side, size, window)  # (B, N)
    y = torch.arange(height, device=reach.device, dtype=reach.dtype)
    x = torch.arange(width, device=reach.device, dtype=reach.dtype)
    scale = torch.where(last.seen, SLOPE / reach, 0.0)[..., None]  # (B, N, 1)
    return (_beyond(y, last.y0, last.y1, reach) * scale,
            _beyond(x, last.x0, last.x1, reach) * scale)


def _reach(side: torch.Tensor, size: tuple[int, int], window: float) -> torch.Tensor:
    """(B, N) each object's reach in pixels: `window` times its side, or times an eighth
    of the frame's longer side for a smaller object."""
    return window * side.clamp(min=MIN_SIDE_FRACTION * max(size))


def _spread(lost_y: torch.Tensor, lost_x: torch.Tensor) -> torch.Tensor:
    """Per-axis losses (B, N, H), (B, N, W) -> offsets (B, N, H, W): a pixel loses the
    larger of its two (the window is the box grown by the reach along both axes)."""
    return -torch.maximum(lost_y[..., :, None], lost_x[..., None, :])


def _beyond(position: torch.Tensor, low: torch.Tensor, high: torch.Tensor,
            reach: torch.Tensor) -> torch.Tensor:
    """How far each position (L,) lies outside [low - reach, high + reach]: (B, N, L)."""
    outside = (low[..., None] - position).clamp(min=0) + (position - high[..., None]).clamp(min=0)
    return (outside - reach[..., None]).clamp(min=0)


def _extent(occupied: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """occupied: (B, N, L) bool -> first and last occupied position (B, N) (0 when none)."""
    position = torch.arange(occupied.shape[-1], device=occupied.device, dtype=torch.float32)
    first = torch.where(occupied, position, float("inf")).amin(dim=2)
    last = torch.where(occupied, position, float("-inf")).amax(dim=2)
    none = ~occupied.any(dim=2)
    return first.masked_fill(none, 0), last.masked_fill(none, 0)


def object_crops(last: Boxes, size: tuple[int, int], window: float, share: float,
                 given_side: torch.Tensor | None = None, margin: float = 2.0
                 ) -> list[tuple[int, int, int, int] | None]:
    """Where each object of a one-frame batch need be decoded in a frame of `size` (H, W),
    multiples of CELL: its window grown by `margin` reaches (beyond it the window has
    taken SLOPE logits a reach more), as cells (r0, r1, c0, c1) of the stride-16 grid; None
    (the whole frame) for an object not seen in the last frame, or whose crop would be
    `share` of the frame or more."""
    height, width = size
    side = last.side() if given_side is None else torch.maximum(last.side(), given_side)
    grow = (1 + margin) * _reach(side, size, window)  # (1, N)
    rows, cols = height // CELL, width // CELL
    crops = []
    for n in range(side.shape[1]):
        if not last.seen[0, n]:
            crops.append(None)
            continue
        g = float(grow[0, n])
        r0 = max(0, int((float(last.y0[0, n]) - g) // CELL))
        r1 = min(rows, int((float(last.y1[0, n]) + g) // CELL) + 1)
        c0 = max(0, int((float(last.x0[0, n]) - g) // CELL))
        c1 = min(cols, int((float(last.x1[0, n]) + g) // CELL) + 1)
        small = (r1 - r0) * (c1 - c0) < share * rows * cols
        crops.append((r0, r1, c0, c1) if small else None)
    return crops
