"""Prompt masks refined by the segmentation network itself: the coarse mask (the prompt
network's or GrabCut's) is memorised with its frame, and the network predicts that same
frame from its memory, as it would the next frame of a video; the prediction, kept inside
each object's box and pinned at the clicks, may be memorised again for another round. The
network was trained to propagate masks, not to make them, but it has seen more objects of
video than the prompt network, and it settles which object a pixel belongs to with every
object in view at once (its soft aggregation)."""

from __future__ import annotations

import numpy as np

from lgdk.prompts.spec import ObjectPrompt, box_region

ROUNDS = 2  # GrabCut's mask is refined twice; the prompt network's once (make.py)
# the memory read sees an object through stride-16 cells: one fewer than this many cells
# across at the processing size keeps its coarse mask (refined, a skier of 158 pixels fell
# from IoU 0.57 to 0.20: experiments/log.md)
SMALLEST_CELLS = 4
# a click pins a disc at most this share of its object's extent across: the frame's
# disc (1% of its diagonal) swallowed a 158-pixel skier, whose IoU fell from 0.61 to 0.31
# over three clicks (0.66 with this cap; shares 0.05-0.3 measured: experiments/log.md)
CLICK_SHARE = 0.1


def prompt_regions(prompts: list[ObjectPrompt], height: int,
                   width: int) -> dict[int, np.ndarray]:
    """Each boxed object's box as a (H, W) bool region."""
    return {p.object_id: box_region(p.box, height, width) for p in prompts
            if p.box is not None}


def pin_clicks(ids: np.ndarray, prompts: list[ObjectPrompt], radius: int) -> None:
    """In place: a disc around each positive click is its object, around each negative
    click background (unless another object's positive click is there)."""
    yy, xx = np.ogrid[:ids.shape[0], :ids.shape[1]]
    radii = {p.object_id: pin_radius(p, ids, radius) for p in prompts}
    for positive in (False, True):
        for p in prompts:
            for c in p.clicks:
                if c.positive == positive:
                    disc = (yy - c.y) ** 2 + (xx - c.x) ** 2 <= radii[p.object_id] ** 2
                    if positive:
                        ids[disc] = p.object_id
                    else:
                        ids[disc & (ids == p.object_id)] = 0


def pin_radius(prompt: ObjectPrompt, ids: np.ndarray, radius: int) -> float:
    """The radius of the discs an object's clicks pin: the frame's `radius`, at most
    CLICK_SHARE of the object's extent (its box's shorter side; without a box, the
    square root of its area in `ids`)."""
    if prompt.box is not None:
        extent = min(prompt.box.x1 - prompt.box.x0, prompt.box.y1 - prompt.box.y0)
    else:
        extent = float(np.sqrt((ids == prompt.object_id).sum()))
    return max(1.0, min(float(radius), CLICK_SHARE * extent))


def refine_with_network(make_predictor, frame: np.ndarray, ids: np.ndarray,
                        prompts: list[ObjectPrompt], radius: int,
                        rounds: int = ROUNDS) -> np.ndarray:
    """make_predictor() -> a fresh Streaming predictor. ids: (H, W) uint8 coarse mask ->
    the refined (H, W) uint8 mask. An object the network loses, or one too small for it
    to see (`too_small`), keeps its coarse mask."""
    regions = prompt_regions(prompts, *ids.shape)
    for _ in range(rounds):
        predictor = make_predictor()
        predictor.step(frame, ids)
        refined = predictor.labels(predictor.predict(frame)).copy()
        for object_id, region in regions.items():
            refined[(refined == object_id) & ~region] = 0
        for object_id in too_small(ids, prompts, predictor.processing_side):
            refined[refined == object_id] = 0
            refined[ids == object_id] = object_id
        pin_clicks(refined, prompts, radius)
        for p in prompts:
            if not (refined == p.object_id).any():
                refined[ids == p.object_id] = p.object_id
        ids = refined
    return ids


def too_small(ids: np.ndarray, prompts: list[ObjectPrompt], side: int | None) -> list[int]:
    """The prompted objects of a (H, W) mask that are fewer than SMALLEST_CELLS
    stride-16 cells across (the square root of their area) when the frame's shorter side
    is processed at `side` (0: as it is; None: not known, none is)."""
    from lgdk.infer.scale import STRIDE

    if side is None:
        return []
    scale = side / min(ids.shape) if side else 1.0
    return [p.object_id for p in prompts
            if np.sqrt((ids == p.object_id).sum()) * scale < SMALLEST_CELLS * STRIDE]
