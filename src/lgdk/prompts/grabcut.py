"""The classical prompt-to-mask method: OpenCV's GrabCut (Rother et al., 2004) started
from the box (outside: background; inside: probably the object) and pinned by the clicks
(a disc of sure object or sure background around each), on a copy of the frame scaled to
at most `work_side` pixels on its longer side."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from lgdk.prompts.spec import ObjectPrompt

WORK_SIDE = 480  # longer side GrabCut runs at (its cost grows with the pixel count)
ITERATIONS = 5
CLICK_RADIUS = 0.01  # of the frame's diagonal
CLICK_WINDOW = 0.5  # clicks alone: the object is looked for within this share of the frame


def click_radius(height: int, width: int) -> int:
    """Radius in pixels of the disc a click pins."""
    return max(2, int(CLICK_RADIUS * np.hypot(height, width)))


def _initial_labels(prompt: ObjectPrompt, height: int, width: int, scale: float):
    import cv2

    labels = np.full((height, width), cv2.GC_BGD, np.uint8)
    if prompt.box is not None:
        b = prompt.box
        x0, y0 = int(b.x0 * scale), int(b.y0 * scale)
        x1, y1 = max(x0 + 1, int(np.ceil(b.x1 * scale))), max(y0 + 1, int(np.ceil(b.y1 * scale)))
        labels[y0:y1, x0:x1] = cv2.GC_PR_FGD
    else:  # clicks alone: a window around the positive ones may hold the object
        xs = [c.x * scale for c in prompt.clicks if c.positive]
        ys = [c.y * scale for c in prompt.clicks if c.positive]
        half = CLICK_WINDOW * min(height, width) / 2
        y0, y1 = int(max(0, min(ys) - half)), int(min(height, max(ys) + half))
        x0, x1 = int(max(0, min(xs) - half)), int(min(width, max(xs) + half))
        labels[y0:y1, x0:x1] = cv2.GC_PR_BGD
    if not (labels != cv2.GC_PR_FGD).any():  # a box over the whole frame: its border
        labels[[0, -1], :] = cv2.GC_PR_BGD
        labels[:, [0, -1]] = cv2.GC_PR_BGD
    radius = click_radius(height, width)
    for c in prompt.clicks:
        cv2.circle(labels, (int(c.x * scale), int(c.y * scale)), radius,
                   int(cv2.GC_FGD if c.positive else cv2.GC_BGD), thickness=-1)
    return labels


def _clean(mask: np.ndarray, prompt: ObjectPrompt, scale: float) -> np.ndarray:
    """Keep the pieces at least a tenth of the largest (GrabCut leaves specks of object
    colour elsewhere) but not those beside a negative click (a piece the user pointed out
    as wrong), and always those that hold a positive click."""
    pieces, count = ndimage.label(mask)
    if count <= 1:
        return mask
    sizes = ndimage.sum(mask, pieces, index=np.arange(1, count + 1))
    keep = sizes >= 0.1 * sizes.max()
    radius = click_radius(*mask.shape) + 2
    yy, xx = np.ogrid[:mask.shape[0], :mask.shape[1]]
    for c in prompt.clicks:
        x, y = min(int(c.x * scale), mask.shape[1] - 1), min(int(c.y * scale), mask.shape[0] - 1)
        if not c.positive:
            near = (yy - y) ** 2 + (xx - x) ** 2 <= radius ** 2
            keep[np.unique(pieces[near & (pieces > 0)]) - 1] = False
    for c in prompt.clicks:
        piece = pieces[min(int(c.y * scale), mask.shape[0] - 1),
                       min(int(c.x * scale), mask.shape[1] - 1)]
        if c.positive and piece:
            keep[piece - 1] = True
    if not keep.any():
        return mask
    return keep[np.maximum(pieces - 1, 0)] & (pieces > 0)


def _fallback(prompt: ObjectPrompt, height: int, width: int, scale: float) -> np.ndarray:
    import cv2

    mask = np.zeros((height, width), np.uint8)
    if prompt.box is not None:
        b = prompt.box
        centre = (int((b.x0 + b.x1) / 2 * scale), int((b.y0 + b.y1) / 2 * scale))
        axes = (max(1, int((b.x1 - b.x0) / 2 * scale)), max(1, int((b.y1 - b.y0) / 2 * scale)))
        cv2.ellipse(mask, centre, axes, 0, 0, 360, 1, thickness=-1)
    radius = click_radius(height, width)
    for c in prompt.clicks:
        cv2.circle(mask, (int(c.x * scale), int(c.y * scale)), radius, int(c.positive),
                   thickness=-1)
    return mask.astype(bool)


def grabcut_mask(frame: np.ndarray, prompt: ObjectPrompt, iterations: int = ITERATIONS,
                 work_side: int = WORK_SIDE) -> np.ndarray:
    """frame: (H, W, 3) uint8 RGB -> (H, W) bool mask of the prompted object."""
    import cv2
    from PIL import Image

    height, width = frame.shape[:2]
    scale = min(1.0, work_side / max(height, width))
    h, w = max(1, round(height * scale)), max(1, round(width * scale))
    small = frame
    if scale < 1:
        small = np.asarray(Image.fromarray(frame).resize((w, h), Image.BILINEAR))
    labels = _initial_labels(prompt, h, w, scale)
    bgr = np.ascontiguousarray(small[..., ::-1])
    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    has_both = ((labels == cv2.GC_BGD) | (labels == cv2.GC_PR_BGD)).any() and \
        ((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)).any()
    if has_both:
        cv2.grabCut(bgr, labels, None, background, foreground, iterations,
                    cv2.GC_INIT_WITH_MASK)
    mask = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    mask = _clean(mask, prompt, scale)
    if not mask.any():  # nothing stood out: the ellipse inside the box, or the click discs
        mask = _fallback(prompt, h, w, scale)
    if scale < 1:
        up = Image.fromarray(mask.astype(np.uint8) * 255).resize((width, height), Image.BILINEAR)
        mask = np.asarray(up) >= 128
    return mask
