"""A motion window: where each object can be in the next frame, from where it was.

Objects move a bounded distance between frames, but a memory read matches by appearance
anywhere: a small object's mask bleeds into background that looks like it, and among
similar objects (a crowd) each object's mask spreads onto the others. The window lowers an
object's logits with their distance beyond its reach from its box in the previous frame:

    reach   = window * max(box side, frame side / 8)
    penalty = SLOPE * max(0, distance to the box along x or y - reach) / reach

so the logits are untouched within the reach and fall by SLOPE for every further reach.
An object absent from the previous frame (hidden, lost, or not yet given) has no window:
it may come back anywhere. `window = 0` turns it off.
"""

from __future__ import annotations

import torch

SLOPE = 8.0  # logits lost for every further reach beyond the window
MIN_SIDE_FRACTION = 1 / 8  # the reach of a tiny object is that of one this large


def window_penalty(previous: torch.Tensor, window: float) -> torch.Tensor:
    """previous: (B, N, H, W) object probabilities of the previous frame -> logit offsets
    (B, N, H, W), 0 inside each object's reach and negative beyond it."""
    batch, objects, height, width = previous.shape
    present = previous > 0.5  # (B, N, H, W)
    rows = present.any(dim=3)  # (B, N, H)
    cols = present.any(dim=2)  # (B, N, W)
    y = torch.arange(height, device=previous.device, dtype=previous.dtype)
    x = torch.arange(width, device=previous.device, dtype=previous.dtype)
    y0, y1 = _extent(rows, y)  # (B, N) each
    x0, x1 = _extent(cols, x)
    side = torch.maximum(y1 - y0, x1 - x0).clamp(min=MIN_SIDE_FRACTION * max(height, width))
    reach = (window * side)[..., None, None]  # (B, N, 1, 1)
    dy = (y0[..., None] - y).clamp(min=0) + (y - y1[..., None]).clamp(min=0)  # (B, N, H)
    dx = (x0[..., None] - x).clamp(min=0) + (x - x1[..., None]).clamp(min=0)  # (B, N, W)
    # beyond the reach along either axis (the window is the box grown by the reach)
    excess = torch.maximum((dy - reach[..., 0]).clamp(min=0)[..., :, None],
                           (dx - reach[..., 0]).clamp(min=0)[..., None, :])  # (B, N, H, W)
    penalty = excess * (-SLOPE / reach)
    seen = rows.any(dim=2)[..., None, None]  # (B, N, 1, 1)
    return torch.where(seen, penalty, torch.zeros_like(penalty))


def _extent(occupied: torch.Tensor, position: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """occupied: (B, N, L) bool -> first and last occupied position (B, N) (0 when none)."""
    first = torch.where(occupied, position, position.new_tensor(float("inf"))).amin(dim=2)
    last = torch.where(occupied, position, position.new_tensor(float("-inf"))).amax(dim=2)
    none = ~occupied.any(dim=2)
    return first.masked_fill(none, 0), last.masked_fill(none, 0)
