"""Which frames of a real video make a training clip (STCN's sampling)."""

from __future__ import annotations

import numpy as np


def clip_order(rng: np.random.Generator, length: int, frames: int, gap: int) -> list[int]:
    """`frames` indices of a video of `length` frames, at most `gap` apart on average: a
    start and frames - 1 others within (frames - 1) * gap after it, in order, played
    backwards half the time."""
    span = min(length - 1, gap * (frames - 1))
    start = int(rng.integers(0, length - span))
    picks = sorted(rng.choice(np.arange(start + 1, start + span + 1), frames - 1, replace=False))
    order = [start, *(int(p) for p in picks)]
    return order[::-1] if rng.random() < 0.5 else order
