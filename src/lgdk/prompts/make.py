"""Boxes and clicks -> one frame's mask of object ids, by the chosen method: the prompt
network's mask refined by the segmentation network (`learned+network`, the default), the
prompt network alone (`learned`), GrabCut refined by the segmentation network
(`network`), or GrabCut alone; overlapping objects are settled pixel by pixel."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from lgdk.config import MAX_OBJECTS
from lgdk.data.masks import object_ids
from lgdk.prompts.spec import Box, Click, ObjectPrompt, PromptError, check_prompts, tight_box

# "learned": the prompt network (lgdk.prompts.net), one object at a time through its box's
# window, told where the other objects' boxes are; "network": GrabCut's mask refined by
# the segmentation network (lgdk.prompts.refine); "learned+network": the prompt network's
# mask refined by it; "grabcut": OpenCV's GrabCut alone
METHODS = ("learned+network", "learned", "network", "grabcut")
DEFAULT_METHOD = "learned+network"
# rounds of the segmentation network's refinement after each coarse method; none: no
# refinement (GrabCut's colour model gains from a second round, the prompt network's
# mask from the first: experiments/log.md)
REFINE_ROUNDS = {"learned+network": 1, "network": 2}
PROMPT_NET_METHODS = ("learned+network", "learned")  # the methods the prompt network starts


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
                             method: str = DEFAULT_METHOD, max_objects: int = MAX_OBJECTS,
                             make_predictor=None, prompt_net=None,
                             others: np.ndarray | None = None) -> np.ndarray:
    """frame: (H, W, 3) uint8 RGB -> (H, W) uint8 map of object ids. Where two objects'
    masks overlap, the more probable one is taken, or (on a tie) the one with the smaller
    box. make_predictor() gives a fresh predictor for the methods that refine with the
    segmentation network, prompt_net the prompt network (default: the shipped ones, on
    the CPU); others: (H, W) ids of this frame's objects that are not prompted here (0
    elsewhere): the prompt network leaves their boxes' pixels to them, as it does for the
    other prompts' boxes, and the refinement sees them beside the prompted objects. The
    map returned holds the prompted objects only."""
    if method not in METHODS:
        raise PromptError(f"unknown prompt method '{method}'; choose one of {', '.join(METHODS)}")
    from lgdk.prompts.grabcut import click_radius, grabcut_mask
    from lgdk.prompts.refine import pin_clicks

    height, width = frame.shape[:2]
    check_prompts(prompts, height, width, max_objects)
    if others is not None and others.shape != (height, width):
        raise PromptError(f"the other objects' mask is {others.shape[1]}x{others.shape[0]} "
                          f"but the frame is {width}x{height}; give it at the frame's size")
    others = _without(others, prompts) if others is not None else None
    other_boxes = [] if others is None else [tight_box(others == o) for o in object_ids(others)]
    learned = method in PROMPT_NET_METHODS
    if learned:
        from lgdk.prompts.learned import learned_probability

        net = prompt_net or shipped_prompt_net()
        chances = {p.object_id: learned_probability(
            net, frame, with_others_clicks(p, prompts), _other_boxes(p, prompts) + other_boxes)
            for p in prompts}
    else:
        chances = {p.object_id: grabcut_mask(frame, p).astype(np.float32) for p in prompts}
    ids = _combine(chances, prompts)
    if learned:
        pin_clicks(ids, prompts, click_radius(height, width))
    for p in prompts:
        if not (ids == p.object_id).any():
            raise PromptError(f"object {p.object_id}: its prompt gave an empty mask; give a "
                              "tighter box or a positive click on it")
    if method in REFINE_ROUNDS:
        from lgdk.prompts.refine import refine_with_network

        seen = ids if others is None else np.where(ids > 0, ids, others)  # all, in view
        refined = refine_with_network(make_predictor or _shipped_predictor(max_objects),
                                      frame, seen, prompts, click_radius(height, width),
                                      REFINE_ROUNDS[method])
        ids = np.where(np.isin(refined, [p.object_id for p in prompts]), refined, 0)
    return ids.astype(np.uint8)


def _without(others: np.ndarray, prompts: list[ObjectPrompt]) -> np.ndarray:
    """The other objects' (H, W) ids with the prompted objects' pixels (their masks before
    these prompts) cleared."""
    return np.where(np.isin(others, [p.object_id for p in prompts]), 0, others)


def _other_boxes(prompt: ObjectPrompt, prompts: list[ObjectPrompt]) -> list[Box]:
    return [p.box for p in prompts if p is not prompt and p.box is not None]


def with_others_clicks(prompt: ObjectPrompt, prompts: list[ObjectPrompt]) -> ObjectPrompt:
    """The prompt with the other objects' positive clicks added as negative ones: a pixel
    the user gave to another object is not this one's."""
    taken = [Click(c.x, c.y, False) for p in prompts if p is not prompt
             for c in p.clicks if c.positive]
    if not taken:
        return prompt
    return ObjectPrompt(prompt.object_id, prompt.box, list(prompt.clicks) + taken)


def _combine(chances: dict[int, np.ndarray], prompts: list[ObjectPrompt]) -> np.ndarray:
    """Per-object (H, W) probabilities -> (H, W) uint8 ids: each pixel to its most probable
    object when that is at least 0.5; ties to the object with the smaller box (or mask)."""
    def extent(p: ObjectPrompt) -> float:
        b = p.box
        return (b.x1 - b.x0) * (b.y1 - b.y0) if b else float((chances[p.object_id] >= 0.5).sum())

    order = sorted(prompts, key=extent)  # smallest first: it wins ties
    stack = np.stack([chances[p.object_id] for p in order])  # (N, H, W)
    best = np.argmax(stack, axis=0)
    ids = np.array([p.object_id for p in order], np.uint8)[best]
    ids[np.take_along_axis(stack, best[None], 0)[0] < 0.5] = 0
    return ids


@functools.cache
def shipped_prompt_net():
    """The shipped prompt network on the CPU, loaded on first use."""
    from lgdk.prompts.learned import load_prompt_net

    return load_prompt_net()


@functools.cache
def _shipped_predictor(max_objects: int):
    """The shipped segmentation network's predictors at its shipped settings (the
    processing size following the objects), as `lgdk segment` makes them."""
    from lgdk.infer.loading import load_models
    from lgdk.infer.tta import make_predictor

    models, settings = load_models(None, "cpu", max_objects=max_objects)
    return lambda: make_predictor(models, settings)


def masks_from_prompts(frame: np.ndarray, boxes: Sequence[Sequence[float]] = (),
                       points: Sequence[Sequence] = (), method: str = DEFAULT_METHOD,
                       max_objects: int = MAX_OBJECTS, make_predictor=None,
                       prompt_net=None) -> np.ndarray:
    """The first mask from boxes and clicks: (H, W, 3) uint8 RGB -> (H, W) uint8 ids."""
    return mask_from_object_prompts(frame, prompts_from_lists(boxes, points), method,
                                    max_objects, make_predictor, prompt_net)
