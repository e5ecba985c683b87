"""Prompts for one frame: a box and/or clicks per object, parsed and checked.

Command-line order carries meaning: each `--box` starts the next object (ids 1, 2, ...);
a `--point` refines the object of the box before it, or starts an object when no box came
before it; `--point X,Y,+,ID` names the object outright (a new ID starts an object).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lgdk.errors import UserError


class PromptError(UserError):
    """A box or click that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Box:
    x0: float
    y0: float
    x1: float
    y1: float


def tight_box(mask: np.ndarray) -> Box:
    """The bounding box of a (H, W) bool mask's pixels (pixel edges: x1, y1 exclusive)."""
    ys, xs = np.nonzero(mask)
    return Box(float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))


def box_region(box: Box, height: int, width: int) -> np.ndarray:
    """(H, W) bool: the pixels a box covers."""
    region = np.zeros((height, width), bool)
    region[int(box.y0):int(np.ceil(box.y1)), int(box.x0):int(np.ceil(box.x1))] = True
    return region


@dataclass(frozen=True)
class Click:
    x: float
    y: float
    positive: bool = True


@dataclass
class ObjectPrompt:
    """What the user gave for one object: a box, clicks, or both."""

    object_id: int
    box: Box | None = None
    clicks: list[Click] = field(default_factory=list)


def parse_box(text: str) -> Box:
    try:
        x0, y0, x1, y1 = (float(v) for v in text.split(","))
    except ValueError:
        raise PromptError(f"--box must be X0,Y0,X1,Y1 in pixels, like 40,30,200,180, not "
                          f"'{text}'") from None
    return Box(x0, y0, x1, y1)


def parse_point(text: str) -> tuple[Click, int | None]:
    """'X,Y', 'X,Y,+', 'X,Y,-' or 'X,Y,+,ID' -> the click and its object id (if named)."""
    parts = text.split(",")
    try:
        x, y = float(parts[0]), float(parts[1])
        sign = parts[2].strip() if len(parts) > 2 else "+"
        object_id = int(parts[3]) if len(parts) > 3 else None
        if sign not in ("+", "-") or len(parts) > 4:
            raise ValueError
    except (ValueError, IndexError):
        raise PromptError(f"--point must be X,Y with an optional ,+ or ,- (positive or "
                          f"negative) and an optional ,ID, like 120,80,+ , not '{text}'") from None
    return Click(x, y, sign == "+"), object_id


def group_prompts(items: list[tuple[str, str]]) -> list[ObjectPrompt]:
    """[('box', '10,10,50,60'), ('point', '30,30,-'), ...] in command-line order -> one
    ObjectPrompt per object, by id."""
    objects: dict[int, ObjectPrompt] = {}
    current: int | None = None
    for kind, text in items:
        if kind == "box":
            current = max(objects, default=0) + 1
            objects[current] = ObjectPrompt(current, box=parse_box(text))
            continue
        click, named = parse_point(text)
        target = named if named is not None else current
        if target is None:
            target = max(objects, default=0) + 1
        objects.setdefault(target, ObjectPrompt(target)).clicks.append(click)
        current = target
    return [objects[k] for k in sorted(objects)]


def check_prompts(prompts: list[ObjectPrompt], height: int, width: int,
                  max_objects: int) -> None:
    """Every box inside the frame with an area, every click inside, something positive
    for every object, no more objects than the limit."""
    if not prompts:
        raise PromptError("no prompt given: give --box X0,Y0,X1,Y1 or --point X,Y per object")
    if len(prompts) > max_objects:
        raise PromptError(f"{len(prompts)} objects exceed the limit of {max_objects}; raise "
                          "it with --max-objects")
    for p in prompts:
        if p.object_id < 1 or p.object_id > 254:
            raise PromptError(f"object id {p.object_id} is not in 1-254")
        if p.box is not None:
            b = p.box
            if not (0 <= b.x0 <= width and 0 <= b.x1 <= width and 0 <= b.y0 <= height
                    and 0 <= b.y1 <= height):
                raise PromptError(f"object {p.object_id}: box {b.x0:g},{b.y0:g},{b.x1:g},"
                                  f"{b.y1:g} is outside the {width}x{height} frame")
            if b.x1 - b.x0 < 1 or b.y1 - b.y0 < 1:
                raise PromptError(f"object {p.object_id}: box {b.x0:g},{b.y0:g},{b.x1:g},"
                                  f"{b.y1:g} has no area; give X0,Y0,X1,Y1 with X1 > X0 and "
                                  "Y1 > Y0")
        for c in p.clicks:
            if not (0 <= c.x < width and 0 <= c.y < height):
                raise PromptError(f"object {p.object_id}: click {c.x:g},{c.y:g} is outside "
                                  f"the {width}x{height} frame")
        if p.box is None and not any(c.positive for c in p.clicks):
            raise PromptError(f"object {p.object_id} has only negative clicks; start it with "
                              "a --box or a positive --point X,Y,+")
