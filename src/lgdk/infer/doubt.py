"""Where to correct next: how sure each frame's masks are, from the probabilities alone.

Per frame and object (`measure`): its certainty (of the pixels the object may hold, p > 0.1,
the share it holds surely, p > 0.9) and its area. Per frame, over the frames in order
(`frame_doubts`): its least certain object and why, one of
- `unsure`: low certainty (1 - certainty);
- `area jump`: its area changed suddenly from the frame before (a factor of 4 counts 1);
- `vanished`: it was there on the frame before and is gone (counts 1).
Given frames are sure (doubt 0). Light to import (torch only inside `measure`): the app's
strip and `lgdk segment --report` use it, and so does the benchmark of the correction loop
(`scripts/eval_interactive.py`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LOW, HIGH = 0.1, 0.9  # the probabilities an object may hold a pixel at / surely holds it
JUMP_FACTOR = 4.0  # an area change by this factor from one frame to the next: doubt 1
VANISHED_AREA = 1e-4  # an object under this share of the frame is gone
SEEN_AREA = 1e-3  # ... and was there before when it held at least this share


@dataclass(frozen=True)
class ObjectMeasure:
    object_id: int
    certainty: float  # 0..1; 1 where absent (nothing to be unsure of)
    area: float  # the share of the frame its mask (p > 0.5) covers


def measure(probs, object_ids: list[int]) -> list[ObjectMeasure]:
    """probs: (1+N, H, W) torch tensor or array over background + `object_ids`."""
    import torch

    p = torch.as_tensor(probs)[1:].float()  # (N, H, W)
    pixels = p.shape[-2] * p.shape[-1]
    may = (p > LOW).flatten(1).sum(1).tolist()
    sure = (p > HIGH).flatten(1).sum(1).tolist()
    half = (p > 0.5).flatten(1).sum(1).tolist()
    return [ObjectMeasure(o, sure[k] / may[k] if may[k] else 1.0, half[k] / pixels)
            for k, o in enumerate(object_ids)]


@dataclass(frozen=True)
class FrameDoubt:
    frame: int
    doubt: float  # 0 (sure) .. 1
    object_id: int | None  # the least certain object
    why: str  # "unsure", "area jump", "vanished", "given" or "" (no object)

    def to_dict(self) -> dict:
        return {"frame": self.frame, "doubt": round(self.doubt, 4),
                "object": self.object_id, "why": self.why}


def object_doubt(now: ObjectMeasure, before: ObjectMeasure | None) -> tuple[float, str]:
    if before is not None and before.area >= SEEN_AREA and now.area < VANISHED_AREA:
        return 1.0, "vanished"
    unsure = 1.0 - now.certainty if now.area >= VANISHED_AREA else 0.0
    jump = 0.0
    if before is not None and min(now.area, before.area) >= VANISHED_AREA:
        jump = min(1.0, abs(math.log(now.area / before.area)) / math.log(JUMP_FACTOR))
    return (jump, "area jump") if jump > unsure else (unsure, "unsure")


def frame_doubts(frames: list[list[ObjectMeasure] | None],
                 given: set[int] = frozenset()) -> list[FrameDoubt]:
    """Each frame's doubt, from its objects' measures (None: not segmented) in frame
    order; a given frame is sure."""
    out, before = [], {}
    for index, measures in enumerate(frames):
        if index in given:
            out.append(FrameDoubt(index, 0.0, None, "given"))
        elif not measures:
            out.append(FrameDoubt(index, 0.0, None, ""))
        else:
            scored = [(*object_doubt(m, before.get(m.object_id)), m.object_id)
                      for m in measures]
            doubt, why, object_id = max(scored, key=lambda s: s[0])
            out.append(FrameDoubt(index, doubt, object_id, why))
        before = {m.object_id: m for m in measures or []}
    return out


def worst_frames(doubts: list[FrameDoubt], count: int = 5) -> list[FrameDoubt]:
    """The `count` most doubtful frames, most doubtful first."""
    ranked = sorted((d for d in doubts if d.doubt > 0), key=lambda d: (-d.doubt, d.frame))
    return ranked[:count]
