"""The brush: a stroke's points and radius checked against the app's limits, then the
pixels within the radius of its polyline, in one pass over the frame however long the
stroke."""

from __future__ import annotations

import math

import cv2
import numpy as np

from lgdk.app.limits import AppSettings
from lgdk.prompts.spec import PromptError

SUBPIXEL_BITS = 4  # a brush stroke's points are drawn to a sixteenth of a pixel


def check_stroke(points: list[tuple[float, float]], radius: float, size: tuple[int, int],
                 settings: AppSettings) -> None:
    """Refuse a stroke past the app's limits before any pixel is drawn: at most
    `max_points` points, each within a frame's width and height of the frame, and a
    radius in (0, max_radius]."""
    if not points:
        raise PromptError("a brush stroke needs at least one point")
    if len(points) > settings.max_points:
        raise PromptError(f"a brush stroke of {len(points)} points is over this app's limit "
                          f"of {settings.max_points} (--max-points); send shorter strokes")
    if not (math.isfinite(radius) and 0 < radius <= settings.max_radius):
        raise PromptError(f"brush radius {radius:g} is not in (0, {settings.max_radius:g}] "
                          "pixels (--max-radius)")
    height, width = size
    for x, y in points:
        if not (-width <= x <= 2 * width and -height <= y <= 2 * height):
            raise PromptError(f"brush point {x:g},{y:g} is far off the {width}x{height} "
                              "frame")


def stroke_pixels(points: list[tuple[float, float]], radius: float,
            size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: the pixels within `radius` of the polyline through `points`: the line
    drawn one pixel wide on a canvas padded by the radius, then a distance transform; its
    cost is the canvas's, whatever the stroke's length."""
    height, width = size
    pad = int(math.ceil(radius)) + 1
    canvas = np.full((height + 2 * pad, width + 2 * pad), 255, np.uint8)
    scale = 1 << SUBPIXEL_BITS
    line = np.array([[round((x + pad) * scale), round((y + pad) * scale)]
                     for x, y in points], np.int32)  # (N, 2) fixed point
    cv2.polylines(canvas, [line.reshape(-1, 1, 2)], False, 0, 1, cv2.LINE_8, SUBPIXEL_BITS)
    cx, cy = ((line + scale // 2) >> SUBPIXEL_BITS).T  # each point's own pixel (a dot too)
    inside = (cx >= 0) & (cx < canvas.shape[1]) & (cy >= 0) & (cy < canvas.shape[0])
    canvas[cy[inside], cx[inside]] = 0
    distance = cv2.distanceTransform(canvas, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return distance[pad:pad + height, pad:pad + width] <= radius
