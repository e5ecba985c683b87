"""Scenes for training the prompt network where it fails: several objects that touch and
overlap (a copy of the object itself, a look-alike, or another object, pasted in front of
it or behind it), the object in front of a larger one that reaches beyond its box on
every side (a violin held by its player, flowers before a face), and objects made small.

A scene is an RGB image (H, W, 3) uint8 with its map of object ids (H, W) uint8 and the id
of the object prompted; pasting adds an object with a new id, and what it hides of the
others is taken out of their masks (occlusion order). A paste's edge may be feathered
(`feather`): a hard cut-out edge is a seam that real frames never show (measured in run
`prompt-feather`, docs/training.md: no gain on real frames).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from lgdk.data.masks import VOID
from lgdk.prompts.spec import Box, box_region, tight_box

MIN_VISIBLE = 0.3  # a paste that leaves less of the prompted object than this is undone


@dataclass
class Scene:
    image: np.ndarray  # (H, W, 3) uint8
    ids: np.ndarray  # (H, W) uint8, 0 background, VOID unknown
    target: int  # the prompted object's id

    @property
    def mask(self) -> np.ndarray:
        return self.ids == self.target

    def flipped(self) -> Scene:
        return Scene(self.image[:, ::-1].copy(), self.ids[:, ::-1].copy(), self.target)

    def other_ids(self, min_pixels: int) -> list[int]:
        values, counts = np.unique(self.ids, return_counts=True)
        return [int(v) for v, c in zip(values, counts)
                if v not in (0, VOID, self.target) and c >= min_pixels]


def cut_object(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The object's box cut out: (h, w, 3) uint8 pixels and (h, w) bool mask."""
    box = tight_box(mask)
    rows, cols = slice(int(box.y0), int(box.y1)), slice(int(box.x0), int(box.x1))
    return image[rows, cols].copy(), mask[rows, cols].copy()


def _resized(pixels: np.ndarray, mask: np.ndarray, width: int,
             height: int) -> tuple[np.ndarray, np.ndarray]:
    rgb = np.asarray(Image.fromarray(pixels).resize((width, height), Image.BILINEAR))
    cut = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(
        (width, height), Image.BILINEAR)) >= 128
    return rgb, cut


def paste_near(rng: np.random.Generator, scene: Scene, pixels: np.ndarray,
               mask: np.ndarray, in_front: bool, feather: float = 0.0) -> Scene | None:
    """A cut object (pixels (h, w, 3), mask (h, w)) scaled to 0.35-1.3 times the prompted
    object's box and pasted so that it overlaps or touches it, in front of everything or
    behind the prompted object (a small thing held in front of a person, a look-alike
    crossing it). None when it would hide too much of the prompted object or
    there is no free id. feather: see `composite`."""
    new_id = int(scene.ids[scene.ids != VOID].max(initial=0)) + 1
    if new_id >= VOID:
        return None
    box = tight_box(scene.mask)
    bw, bh = box.x1 - box.x0, box.y1 - box.y0
    scale = np.exp(rng.uniform(np.log(0.35), np.log(1.3)))
    scale *= max(bw / pixels.shape[1], bh / pixels.shape[0])
    width = max(2, round(pixels.shape[1] * scale))
    height = max(2, round(pixels.shape[0] * scale))
    rgb, cut = _resized(pixels, mask, width, height)
    # the pasted object's centre: on a ring around the box's centre, half to one box away
    angle, reach = rng.uniform(0, 2 * np.pi), rng.uniform(0.3, 0.9)
    cx = (box.x0 + box.x1) / 2 + np.cos(angle) * reach * (bw + width) / 2
    cy = (box.y0 + box.y1) / 2 + np.sin(angle) * reach * (bh + height) / 2
    x0, y0 = round(cx - width / 2), round(cy - height / 2)
    where = _placed(cut, x0, y0, scene.ids.shape)
    if not in_front:
        where &= ~scene.mask
    visible = (scene.mask & ~where).sum()
    if visible < MIN_VISIBLE * scene.mask.sum() or not where.any():
        return None
    return _pasted(rng, scene, _placed(rgb, x0, y0, scene.ids.shape), where, new_id,
                   feather * max(width, height))


def paste_large_behind(rng: np.random.Generator, scene: Scene, pixels: np.ndarray,
                       mask: np.ndarray, scale: tuple[float, float] = (1.6, 3.5),
                       feather: float = 0.0) -> Scene | None:
    """A cut object (pixels (h, w, 3), mask (h, w)) scaled so that its box is `scale` times
    the prompted object's and pasted behind it (and every other object), their centres
    close: the prompted object's box then lies inside a larger object that it must not
    take. None when the pasted object would not surround the prompted one or there is no
    free id. feather: see `composite`."""
    new_id = int(scene.ids[scene.ids != VOID].max(initial=0)) + 1
    if new_id >= VOID:
        return None
    box = tight_box(scene.mask)
    bw, bh = box.x1 - box.x0, box.y1 - box.y0
    factor = rng.uniform(*scale) * max(bw / pixels.shape[1], bh / pixels.shape[0])
    width = max(2, round(pixels.shape[1] * factor))
    height = max(2, round(pixels.shape[0] * factor))
    rgb, cut = _resized(pixels, mask, width, height)
    cx = (box.x0 + box.x1) / 2 + rng.uniform(-0.25, 0.25) * (width - bw)
    cy = (box.y0 + box.y1) / 2 + rng.uniform(-0.25, 0.25) * (height - bh)
    x0, y0 = round(cx - width / 2), round(cy - height / 2)
    where = _placed(cut, x0, y0, scene.ids.shape) & (scene.ids == 0)  # behind everything
    ring = box_ring(box, scene.ids.shape)
    if not where.any() or (where & ring).sum() < 0.3 * ring.sum():
        return None  # it does not reach around the prompted object
    return _pasted(rng, scene, _placed(rgb, x0, y0, scene.ids.shape), where, new_id,
                   feather * max(width, height))


def _pasted(rng: np.random.Generator, scene: Scene, layer: np.ndarray, where: np.ndarray,
            new_id: int, max_sigma: float) -> Scene:
    """The scene with `layer`'s pixels (H, W, 3) composited over `where` (H, W) as object
    `new_id`, its edge feathered by a Gaussian of sigma drawn up to max_sigma pixels
    (none drawn when max_sigma is 0: the samples of runs before feathering)."""
    ids = scene.ids.copy()
    ids[where] = new_id
    sigma = rng.uniform(0.0, max_sigma) if max_sigma > 0 else 0.0
    return Scene(composite(scene.image, layer, where, sigma), ids, scene.target)


def composite(image: np.ndarray, layer: np.ndarray, where: np.ndarray,
              sigma: float) -> np.ndarray:
    """(H, W, 3) uint8 image with the layer's pixels over `where` (H, W) bool: opaque
    inside, its edge blended with what lies under it over about `sigma` pixels (the
    Gaussian-blurred region, kept inside it: the layer's own background never shows)."""
    out = image.copy()
    if sigma < 0.3:  # below a third of a pixel the blur changes nothing that is seen
        out[where] = layer[where]
        return out
    ys, xs = np.nonzero(where)
    margin = int(np.ceil(3 * sigma)) + 1
    rows = slice(max(ys.min() - margin, 0), ys.max() + margin + 1)
    cols = slice(max(xs.min() - margin, 0), xs.max() + margin + 1)
    inside = where[rows, cols]
    alpha = ndimage.gaussian_filter(inside.astype(np.float32), sigma) * inside  # (h, w)
    alpha = alpha[..., None]
    blended = out[rows, cols] * (1 - alpha) + layer[rows, cols] * alpha
    out[rows, cols] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return out


def _placed(layer: np.ndarray, x0: int, y0: int, shape: tuple[int, int]) -> np.ndarray:
    """A (h, w[, 3]) layer whose top left corner goes to (x0, y0) of a frame of `shape`:
    the frame-sized array with the layer's part inside the frame, zeros elsewhere."""
    out = np.zeros(shape + layer.shape[2:], layer.dtype)
    height, width = layer.shape[:2]
    fx0, fy0 = max(x0, 0), max(y0, 0)
    fx1, fy1 = min(x0 + width, shape[1]), min(y0 + height, shape[0])
    if fx1 > fx0 and fy1 > fy0:
        out[fy0:fy1, fx0:fx1] = layer[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0]
    return out


def box_ring(box: Box, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: a band around the box, a quarter of its size wide, inside the frame."""
    grow_x, grow_y = (box.x1 - box.x0) / 4, (box.y1 - box.y0) / 4
    grown = Box(max(0.0, box.x0 - grow_x), max(0.0, box.y0 - grow_y),
                box.x1 + grow_x, box.y1 + grow_y)
    return box_region(grown, *shape) & ~box_region(box, *shape)


def shrunk(scene: Scene, longer_side: float) -> Scene:
    """The whole scene resized so that the prompted object's box has this longer side (in
    pixels), when that makes it smaller; detail is lost as in a small object of a video."""
    box = tight_box(scene.mask)
    factor = longer_side / max(box.x1 - box.x0, box.y1 - box.y0)
    if factor >= 1:
        return scene
    height, width = scene.ids.shape
    size = (max(8, round(width * factor)), max(8, round(height * factor)))
    image = np.asarray(Image.fromarray(scene.image).resize(size, Image.BILINEAR))
    ids = np.asarray(Image.fromarray(scene.ids).resize(size, Image.NEAREST))
    if not (ids == scene.target).any():
        return scene
    return Scene(image, ids, scene.target)


def object_boxes(scene: Scene, object_ids: list[int]) -> list[Box]:
    return [tight_box(scene.ids == i) for i in object_ids]
