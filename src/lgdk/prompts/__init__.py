"""Masks from boxes and clicks, so that a video can be segmented with no mask file.

    from lgdk.prompts import masks_from_prompts
    ids = masks_from_prompts(frame, boxes=[(40, 30, 200, 180)], points=[(120, 80, False)])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lgdk.prompts.spec import Box, Click, ObjectPrompt, PromptError, check_prompts

# "grabcut": OpenCV's GrabCut alone; "network": GrabCut's mask refined by the segmentation
# network (lgdk.prompts.refine)
METHODS = ("network", "grabcut")
DEFAULT_METHOD = "network"


def prompts_from_lists(boxes: Sequence[Sequence[float]] = (),
                       points: Sequence[Sequence] = ()) -> list[ObjectPrompt]:
    """boxes: (x0, y0, x1, y1) each, object ids 1, 2, ... in order; points: (x, y),
    (x, y, positive) or (x, y, positive, object_id); without an id a point refines the
    last box's object (object 1 when there is no box), as on the command line."""
    objects = {i: ObjectPrompt(i, box=Box(*map(float, b))) for i, b in enumerate(boxes, 1)}
    for point in points:
        if not 2 <= len(point) <= 4:
            raise PromptError(f"a point is (x, y[, positive[, object_id]]), not {point!r}")
        x, y = float(point[0]), float(point[1])
        positive = bool(point[2]) if len(point) > 2 else True
        object_id = int(point[3]) if len(point) > 3 else max(objects, default=1)
        objects.setdefault(object_id, ObjectPrompt(object_id)).clicks.append(
            Click(x, y, positive))
    return [objects[k] for k in sorted(objects)]


def mask_from_object_prompts(frame: np.ndarray, prompts: list[ObjectPrompt],
                             method: str = DEFAULT_METHOD, max_objects: int = 32,
                             make_predictor=None) -> np.ndarray:
    """frame: (H, W, 3) uint8 RGB -> (H, W) uint8 map of object ids. Where two objects'
    masks overlap, the one with the smaller box (or mask) is taken to be in front.
    make_predictor() gives a fresh predictor for the "network" method (default: the
    shipped model on the CPU)."""
    if method not in METHODS:
        raise PromptError(f"unknown prompt method '{method}'; choose one of {', '.join(METHODS)}")
    from lgdk.prompts.grabcut import click_radius, grabcut_mask

    height, width = frame.shape[:2]
    check_prompts(prompts, height, width, max_objects)
    masks = {p.object_id: grabcut_mask(frame, p) for p in prompts}

    def extent(p: ObjectPrompt) -> float:
        b = p.box
        return (b.x1 - b.x0) * (b.y1 - b.y0) if b else float(masks[p.object_id].sum())

    ids = np.zeros((height, width), np.uint8)
    for p in sorted(prompts, key=extent, reverse=True):  # the largest first, behind
        ids[masks[p.object_id]] = p.object_id
    for p in prompts:
        if not (ids == p.object_id).any():
            raise PromptError(f"object {p.object_id}: its prompt gave an empty mask; give a "
                              "tighter box or a positive click on it")
    if method == "network":
        from lgdk.prompts.refine import refine_with_network

        ids = refine_with_network(make_predictor or _shipped_predictor(max_objects), frame,
                                  ids, prompts, click_radius(height, width))
    return ids


def _shipped_predictor(max_objects: int):
    from lgdk.infer.loading import load_models
    from lgdk.infer.predictor import Predictor

    models, settings = load_models(None, "cpu", max_objects=max_objects)
    return lambda: Predictor(models[0], settings)


def masks_from_prompts(frame: np.ndarray, boxes: Sequence[Sequence[float]] = (),
                       points: Sequence[Sequence] = (), method: str = DEFAULT_METHOD,
                       max_objects: int = 32, make_predictor=None) -> np.ndarray:
    """The first mask from boxes and clicks: (H, W, 3) uint8 RGB -> (H, W) uint8 ids."""
    return mask_from_object_prompts(frame, prompts_from_lists(boxes, points), method,
                                    max_objects, make_predictor)
