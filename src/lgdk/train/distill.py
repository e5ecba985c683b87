"""Distilling a memory encoder: a cheaper student encoder learns a trained model's values.

A model whose memory encoder changed (e.g. `light` -> `fast`) but that shares everything
else with a trained model starts from that model's weights (`load_matching_weights`); its
new memory encoder then learns to give the teacher's memory values for the same frame,
query features and masks, so the memory read, kernels and decoder see what they were
trained on. Only the student's memory encoder is trained; each step costs a fraction of
a training step (no decoder, no backward through the backbone).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F

from lgdk.models.network import LGDK

log = logging.getLogger(__name__)


def frame_masks(labels: torch.Tensor, objects: int, soften: bool) -> torch.Tensor:
    """Labels (B, T, H, W) in 0..objects -> per-object masks (B*T, objects, H, W); with
    `soften`, a 5x5 box blur imitates the soft predicted masks memorised at inference."""
    ids = torch.arange(1, objects + 1, device=labels.device).view(1, 1, objects, 1, 1)
    masks = (labels.unsqueeze(2) == ids).float().flatten(0, 1)
    return F.avg_pool2d(masks, 5, stride=1, padding=2) if soften else masks


def distill_loss(teacher: LGDK, student: LGDK, frames: torch.Tensor,
                 masks: torch.Tensor) -> torch.Tensor:
    """frames (F, 3, H, W), masks (F, N, H, W): mean squared difference of the student's
    memory values from the teacher's, relative to the teacher values' variance."""
    with torch.no_grad():
        query = teacher.encode_query(frames)
        target, _ = teacher.encode_memory(frames, query, masks)  # (F, N, Cv, h, w)
    value, _ = student.encode_memory(frames, query, masks)
    return F.mse_loss(value, target) / target.var().clamp_min(1e-8)


def distill_memory_encoder(teacher: LGDK, student: LGDK, batches: Iterable[dict],
                           iterations: int, lr: float = 1e-3,
                           log_every: int = 50) -> list[float]:
    """Train `student.memory_encoder` on clip batches (from `ClipDataset`) for
    `iterations` steps (AdamW, cosine schedule). Returns the loss of every step."""
    teacher.eval()
    student.eval()  # BatchNorm statistics stay as trained
    params = list(student.memory_encoder.parameters())
    for p in student.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda i: 0.5 * (1 + math.cos(math.pi * min(i, iterations) / iterations)))
    losses: list[float] = []
    for step, batch in zip(range(iterations), batches):
        frames = batch["frames"].flatten(0, 1)  # (B*T, 3, H, W)
        masks = frame_masks(batch["labels"], batch["first_masks"].shape[1], step % 2 == 1)
        loss = distill_loss(teacher, student, frames, masks)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if log_every and (step + 1) % log_every == 0:
            log.info("distill %d/%d: loss %.4f", step + 1, iterations,
                     sum(losses[-log_every:]) / log_every)
    for p in student.parameters():
        p.requires_grad_(True)
    return losses
