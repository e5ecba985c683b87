"""The window a prompt is looked at through, and the prompt drawn as input maps.

The learned prompt network sees one object at a time, through a square input of `size`
pixels cut from the frame around the object's box with some context (so small and large
objects reach it at a similar scale). Training and inference build windows, crops and
prompt maps with these same functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from lgdk.prompts.spec import Box, Click

# the input maps, in order: inside the box; positive clicks; negative clicks; inside the
# other objects' boxes of the same frame (so that the network leaves them their pixels)
PROMPT_CHANNELS = 4
CLICK_DISC = 5 / 256  # radius of a click's disc, as a share of the input side


@dataclass(frozen=True)
class Window:
    """A rectangle of the frame in pixel coordinates (may reach outside the frame)."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    def to_input(self, x: float, y: float, size: int) -> tuple[float, float]:
        """Frame pixel coordinates -> input pixel coordinates."""
        return (x - self.x0) / self.width * size, (y - self.y0) / self.height * size


def box_window(box: Box, expand: float, max_aspect: float, min_side: float = 16.0) -> Window:
    """The box grown to `expand` times its size around its centre, its shorter side first
    raised to at least 1/max_aspect of its longer (a thin object is not squeezed flat)."""
    width, height = max(box.x1 - box.x0, 1.0), max(box.y1 - box.y0, 1.0)
    width, height = max(width, height / max_aspect), max(height, width / max_aspect)
    width, height = max(width * expand, min_side), max(height * expand, min_side)
    cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
    return Window(cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2)


def frame_window(height: int, width: int) -> Window:
    return Window(0.0, 0.0, float(width), float(height))


def crop(image: np.ndarray, window: Window, size: int, nearest: bool = False) -> np.ndarray:
    """(H, W[, 3]) uint8 -> (size, size[, 3]) uint8: the window resized to the input;
    outside the frame is 0."""
    resample = Image.NEAREST if nearest else Image.BILINEAR
    return np.asarray(Image.fromarray(image).transform(
        (size, size), Image.EXTENT, (window.x0, window.y0, window.x1, window.y1),
        resample=resample, fillcolor=0))


def prompt_maps(window: Window, size: int, box: Box | None, clicks: list[Click],
                others: Sequence[Box] = ()) -> np.ndarray:
    """(PROMPT_CHANNELS, size, size) float32: 1 inside the box, discs at the positive and
    at the negative clicks, 1 inside any of the other objects' boxes."""
    maps = np.zeros((PROMPT_CHANNELS, size, size), np.float32)
    if box is not None:
        fill_box(maps[0], window, box)
    for click in clicks:
        draw_click(maps, *window.to_input(click.x, click.y, size), click.positive)
    for other in others:
        fill_box(maps[3], window, other)
    return maps


def fill_box(plane: np.ndarray, window: Window, box: Box) -> None:
    """In place: 1 over a box's pixels on one (S, S) map of the window."""
    size = plane.shape[-1]
    x0, y0 = window.to_input(box.x0, box.y0, size)
    x1, y1 = window.to_input(box.x1, box.y1, size)
    plane[max(0, round(y0)):max(0, round(y1)), max(0, round(x0)):max(0, round(x1))] = 1


def draw_click(maps: np.ndarray, x: float, y: float, positive: bool) -> None:
    """In place: a click's disc on (PROMPT_CHANNELS, S, S) maps, at input coordinates."""
    size = maps.shape[-1]
    yy, xx = np.ogrid[:size, :size]
    disc = (yy + 0.5 - y) ** 2 + (xx + 0.5 - x) ** 2 <= (CLICK_DISC * size) ** 2
    maps[1 if positive else 2][disc] = 1


def paste_back(probability: np.ndarray, window: Window, height: int,
               width: int) -> np.ndarray:
    """(size, size) float32 over the window -> (height, width) float32 over the frame,
    0 outside the window."""
    out = np.zeros((height, width), np.float32)
    x0, y0 = int(np.floor(window.x0)), int(np.floor(window.y0))
    x1, y1 = int(np.ceil(window.x1)), int(np.ceil(window.y1))
    # the window's pixels at the frame's grid, then the part inside the frame
    span = Window(float(x0), float(y0), float(x1), float(y1))
    size = probability.shape[0]
    u0, v0 = window.to_input(span.x0, span.y0, size)
    u1, v1 = window.to_input(span.x1, span.y1, size)
    resized = np.asarray(Image.fromarray(probability).transform(
        (x1 - x0, y1 - y0), Image.EXTENT, (u0, v0, u1, v1), resample=Image.BILINEAR,
        fillcolor=0), np.float32)
    fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if fx1 > fx0 and fy1 > fy0:
        out[fy0:fy1, fx0:fx1] = resized[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0]
    return out
