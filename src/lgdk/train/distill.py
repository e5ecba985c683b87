"""Distilling a part: a cheaper student part learns a trained model's outputs.

A model whose memory encoder changed (e.g. `light` -> `fast`) but that shares everything
else with a trained model starts from that model's weights (`load_matching_weights`); its
new memory encoder then learns to give the teacher's memory values for the same frame,
query features and masks, so the memory read, kernels and decoder see what they were
trained on. Only the student's memory encoder is trained; each step costs a fraction of
a training step (no decoder, no backward through the backbone). The decoder's entry
(ASPP) is distilled the same way (`distill_part(..., "decoder_entry")`): the student's
learns the teacher's outputs on the teacher's own inputs (readout and query value).
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


def entry_pairs(teacher: LGDK, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's decoder-entry (ASPP) inputs and outputs on a batch of clips, every
    frame after the first predicted from memory as in training: (F*N, Cin, h, w) and
    (F*N, D, h, w)."""
    inputs, outputs = [], []

    def keep(module, args, out):
        inputs.append(args[0])
        outputs.append(out)

    handle = teacher.decoder.entry.register_forward_hook(keep)
    try:
        with torch.no_grad():
            teacher(batch["frames"], batch["first_masks"])
    finally:
        handle.remove()
    return torch.cat(inputs), torch.cat(outputs)


def entry_loss(teacher: LGDK, student: LGDK, batch: dict) -> torch.Tensor:
    """Mean squared difference of the student's decoder entry from the teacher's on the
    teacher's own inputs, relative to the teacher outputs' variance."""
    x, target = entry_pairs(teacher, batch)
    return F.mse_loss(student.decoder.entry(x), target) / target.var().clamp_min(1e-8)


def memory_encoder_loss(teacher: LGDK, student: LGDK, batch: dict, soften: bool
                        ) -> torch.Tensor:
    frames = batch["frames"].flatten(0, 1)  # (B*T, 3, H, W)
    masks = frame_masks(batch["labels"], batch["first_masks"].shape[1], soften)
    return distill_loss(teacher, student, frames, masks)


PARTS = {  # part name -> (the student's module, loss(teacher, student, batch, step))
    "memory_encoder": (lambda m: m.memory_encoder,
                       lambda t, s, b, step: memory_encoder_loss(t, s, b, step % 2 == 1)),
    "decoder_entry": (lambda m: m.decoder.entry,
                      lambda t, s, b, step: entry_loss(t, s, b)),
}


def distill_part(teacher: LGDK, student: LGDK, batches: Iterable[dict], iterations: int,
                 part: str = "memory_encoder", lr: float = 1e-3,
                 log_every: int = 50) -> list[float]:
    """Train one part of `student` (`PARTS`: its memory encoder, or its decoder entry,
    the ASPP) to give the teacher's outputs on clip batches (from `ClipDataset`) for
    `iterations` steps (AdamW, cosine schedule); everything else stays frozen. Returns the
    loss of every step."""
    module_of, loss_of = PARTS[part]
    teacher.eval()
    student.eval()  # BatchNorm statistics stay as trained
    params = list(module_of(student).parameters())
    for p in student.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda i: 0.5 * (1 + math.cos(math.pi * min(i, iterations) / iterations)))
    losses: list[float] = []
    for step, batch in zip(range(iterations), batches):
        loss = loss_of(teacher, student, batch, step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if log_every and (step + 1) % log_every == 0:
            log.info("distill %s %d/%d: loss %.4f", part, step + 1, iterations,
                     sum(losses[-log_every:]) / log_every)
    for p in student.parameters():
        p.requires_grad_(True)
    return losses

