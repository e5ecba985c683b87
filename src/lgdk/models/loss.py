"""Bootstrapped cross-entropy (STCN) and soft dice, on aggregated log-probabilities."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lgdk.data.masks import VOID


def bootstrap_fraction(iteration: int, start: int, end: int, top: float) -> float:
    """1.0 (all pixels) until `start`, then linearly down to `top` at `end`."""
    if iteration < start:
        return 1.0
    if iteration >= end:
        return top
    return 1.0 - (1.0 - top) * (iteration - start) / max(1, end - start)


def bootstrapped_ce(log_probs: torch.Tensor, labels: torch.Tensor, fraction: float) -> torch.Tensor:
    """log_probs: (B, C, H, W); labels: (B, H, W). Mean CE over the hardest `fraction`;
    void pixels (VOID: crowd clips' unlabelled regions) cost nothing."""
    pixel_loss = F.nll_loss(log_probs, labels, reduction="none",
                            ignore_index=VOID).flatten(1)  # (B, H*W)
    if fraction >= 1.0:
        return pixel_loss.mean()
    k = max(1, int(pixel_loss.shape[1] * fraction))
    return pixel_loss.topk(k, dim=1).values.mean()


def soft_dice(log_probs: torch.Tensor, labels: torch.Tensor, num_objects: torch.Tensor):
    """Mean soft dice loss over the objects that exist in each sample (void pixels left
    out)."""
    probs = log_probs.exp()[:, 1:] * (labels != VOID)[:, None]  # (B, N, H, W)
    n = probs.shape[1]
    target = (labels[:, None] == torch.arange(1, n + 1, device=labels.device).view(1, n, 1, 1))
    target = target.float()
    inter = (probs * target).sum(dim=(2, 3))
    denom = probs.sum(dim=(2, 3)) + target.sum(dim=(2, 3))
    dice = 1 - (2 * inter + 1) / (denom + 1)  # (B, N)
    valid = torch.arange(n, device=labels.device)[None] < num_objects[:, None]
    return (dice * valid).sum() / valid.sum().clamp_min(1)


def clip_loss(log_probs, labels, num_objects, fraction, dice_weight):
    """log_probs: (B, T-1, C, H, W) for frames 1..; labels: (B, T, H, W)."""
    total = 0.0
    for t in range(log_probs.shape[1]):
        lp, lbl = log_probs[:, t], labels[:, t + 1]
        total = total + bootstrapped_ce(lp, lbl, fraction)
        if dice_weight:
            total = total + dice_weight * soft_dice(lp, lbl, num_objects)
    return total / log_probs.shape[1]


def batch_iou(log_probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean foreground IoU of the hard predictions (any object vs background; void
    pixels left out)."""
    known = labels[:, 1:] != VOID
    pred = (log_probs.argmax(dim=2) > 0) & known
    truth = (labels[:, 1:] > 0) & known
    inter = (pred & truth).sum().item()
    union = (pred | truth).sum().item()
    return inter / union if union else 1.0
