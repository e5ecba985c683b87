"""Procedural clips: textured shapes moving, turning, scaling and occluding one another.

Needs no data set: used for stage-0 training, the tests and the demo. Every random draw
comes from the `numpy.random.Generator` passed in, so a clip is a pure function of its seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


@dataclass(frozen=True)
class Clip:
    frames: np.ndarray  # (T, H, W, 3) uint8
    labels: np.ndarray  # (T, H, W) uint8 object ids, 0 = background


def smooth_texture(rng: np.random.Generator, height: int, width: int) -> Image.Image:
    """Low-frequency colour blobs plus fine grain: a texture with structure to match on."""
    cells = int(rng.integers(3, 9))
    coarse = rng.integers(0, 256, size=(cells, cells, 3), dtype=np.uint8)
    img = Image.fromarray(coarse).resize((width, height), Image.BICUBIC)
    grain = rng.normal(0, rng.uniform(4, 20), size=(height, width, 3))
    stripes = rng.uniform(0, 40) * np.sin(
        np.arange(width)[None, :, None] * rng.uniform(0.05, 0.4) + rng.uniform(0, 6.3)
    )
    out = np.asarray(img, dtype=np.float32) + grain + stripes
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))


def random_shape(rng: np.random.Generator, size: int) -> Image.Image:
    """A binary (L, 0/255) mask of a star-like polygon or an ellipse, centred in size x size."""
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    c = size / 2
    if rng.random() < 0.3:
        rx, ry = rng.uniform(0.25, 0.48, size=2) * size
        draw.ellipse([c - rx, c - ry, c + rx, c + ry], fill=255)
    else:
        n = int(rng.integers(5, 13))
        angles = np.sort(rng.uniform(0, 2 * np.pi, size=n))
        radii = rng.uniform(0.18, 0.48, size=n) * size
        points = [(c + r * np.cos(a), c + r * np.sin(a)) for a, r in zip(angles, radii)]
        draw.polygon(points, fill=255)
    return mask.filter(ImageFilter.GaussianBlur(1.5)).point(lambda v: 255 if v >= 128 else 0)


@dataclass(frozen=True)
class _Track:
    texture: Image.Image
    shape: Image.Image
    start: np.ndarray  # (x, y) centre at frame 0
    velocity: np.ndarray  # pixels per frame
    angle: float
    spin: float  # degrees per frame
    scale: float
    growth: float  # relative scale change per frame


def _make_track(rng: np.random.Generator, height: int, width: int) -> _Track:
    size = int(min(height, width) * rng.uniform(0.3, 0.6))
    margin = 0.15
    start = np.array([rng.uniform(margin, 1 - margin) * width,
                      rng.uniform(margin, 1 - margin) * height])
    speed = min(height, width) * rng.uniform(0.0, 0.08)
    direction = rng.uniform(0, 2 * np.pi)
    return _Track(
        texture=smooth_texture(rng, size, size),
        shape=random_shape(rng, size),
        start=start,
        velocity=speed * np.array([np.cos(direction), np.sin(direction)]),
        angle=float(rng.uniform(0, 360)),
        spin=float(rng.uniform(-12, 12)),
        scale=float(rng.uniform(0.7, 1.2)),
        growth=float(rng.uniform(-0.06, 0.06)),
    )


def _render(track: _Track, t: int) -> tuple[Image.Image, Image.Image, tuple[int, int]]:
    scale = max(0.2, track.scale * (1 + track.growth * t))
    side = max(4, int(track.shape.width * scale))
    angle = track.angle + track.spin * t
    shape = track.shape.resize((side, side), Image.NEAREST).rotate(angle, expand=True)
    texture = track.texture.resize((side, side), Image.BILINEAR).rotate(angle, expand=True)
    centre = track.start + track.velocity * t
    corner = (int(centre[0] - shape.width / 2), int(centre[1] - shape.height / 2))
    return texture, shape, corner


def generate_clip(
    rng: np.random.Generator,
    height: int = 256,
    width: int = 256,
    num_frames: int = 3,
    num_objects: int | None = None,
    background: Image.Image | None = None,
    min_area: float = 0.01,
) -> Clip:
    """A clip whose objects are all visible in frame 0 (at least `min_area` of it)."""
    count = num_objects if num_objects is not None else int(rng.integers(1, 4))
    for _ in range(50):
        clip = _try_clip(rng, height, width, num_frames, count, background)
        areas = [(clip.labels[0] == i + 1).mean() for i in range(count)]
        if min(areas) >= min_area:
            return clip
    return clip


def _try_clip(rng, height, width, num_frames, count, background) -> Clip:
    pan = rng.normal(0, min(height, width) * 0.02, size=2)
    margin = int(np.ceil(np.abs(pan).max() * num_frames)) + 1
    big = (width + 2 * margin, height + 2 * margin)
    if background is None:
        background = smooth_texture(rng, big[1], big[0])
    else:
        background = background.convert("RGB").resize(big, Image.BILINEAR)
    tracks = [_make_track(rng, height, width) for _ in range(count)]
    frames, labels = [], []
    for t in range(num_frames):
        left, top = margin + int(pan[0] * t), margin + int(pan[1] * t)
        frame = background.crop((left, top, left + width, top + height))
        label = Image.new("L", (width, height), 0)
        for obj_id, track in enumerate(tracks, start=1):  # later objects occlude earlier
            texture, shape, corner = _render(track, t)
            frame.paste(texture, corner, shape)
            label.paste(Image.new("L", shape.size, obj_id), corner, shape)
        frames.append(np.asarray(frame))
        labels.append(np.asarray(label))
    return Clip(np.stack(frames), np.stack(labels))
