"""Prompt masks refined by the segmentation network itself: the coarse mask (GrabCut's)
is memorised with its frame, and the network predicts that same frame from its memory,
as it would the next frame of a video; the prediction, kept inside each object's box and
pinned at the clicks, is memorised again for a second round. The network was trained to
propagate masks, not to make them, but it knows objects better than colour models do."""

from __future__ import annotations

import numpy as np

from lgdk.prompts.spec import ObjectPrompt, box_region

ROUNDS = 2


def prompt_regions(prompts: list[ObjectPrompt], height: int,
                   width: int) -> dict[int, np.ndarray]:
    """Each boxed object's box as a (H, W) bool region."""
    return {p.object_id: box_region(p.box, height, width) for p in prompts
            if p.box is not None}


def pin_clicks(ids: np.ndarray, prompts: list[ObjectPrompt], radius: int) -> None:
    """In place: a disc around each positive click is its object, around each negative
    click background (unless another object's positive click is there)."""
    yy, xx = np.ogrid[:ids.shape[0], :ids.shape[1]]
    for positive in (False, True):
        for p in prompts:
            for c in p.clicks:
                if c.positive == positive:
                    disc = (yy - c.y) ** 2 + (xx - c.x) ** 2 <= radius ** 2
                    if positive:
                        ids[disc] = p.object_id
                    else:
                        ids[disc & (ids == p.object_id)] = 0


def refine_with_network(make_predictor, frame: np.ndarray, ids: np.ndarray,
                        prompts: list[ObjectPrompt], radius: int,
                        rounds: int = ROUNDS) -> np.ndarray:
    """make_predictor() -> a fresh Streaming predictor. ids: (H, W) uint8 coarse mask ->
    the refined (H, W) uint8 mask; an object the network loses keeps its coarse mask."""
    regions = prompt_regions(prompts, *ids.shape)
    for _ in range(rounds):
        predictor = make_predictor()
        predictor.step(frame, ids)
        refined = predictor.labels(predictor.predict(frame)).copy()
        for object_id, region in regions.items():
            refined[(refined == object_id) & ~region] = 0
        pin_clicks(refined, prompts, radius)
        for p in prompts:
            if not (refined == p.object_id).any():
                refined[ids == p.object_id] = p.object_id
        ids = refined
    return ids
