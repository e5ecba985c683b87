"""Multi-object clips composed from stills: objects cut out of photographs (with their
masks) and pasted onto another photograph, each moving on its own path, passing in front
of one another.

DAVIS-2016 has one object per video, so nothing in it teaches the model to keep several
objects apart; these clips do. Pasted objects are drawn back to front in a fixed depth
order: a pasted object hides whatever is behind it, and the hidden part of every mask
behind it is cut (each pixel has the id of the front-most object there). Similar-looking
objects make identity a matter of memory rather than appearance: a cut-out is sometimes
pasted twice, and a still with several instances (Penn-Fudan's pedestrians) gives several
of them to one clip. Every random draw comes from the Generator passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from lgdk.config import DataConfig

MIN_CUTOUT_PIXELS = 64  # smaller objects are not worth pasting


@dataclass(frozen=True)
class Cutout:
    """One object cut out of a still: its bounding box's pixels and which are the object's."""

    rgb: np.ndarray  # (h, w, 3) uint8
    alpha: np.ndarray  # (h, w) bool


@dataclass(frozen=True)
class Motion:
    """Where a pasted object is in each frame: centre (x, y) in pixels, the length of its
    longer side in pixels, rotation in degrees, and whether it is mirrored."""

    centres: np.ndarray  # (T, 2)
    sizes: np.ndarray  # (T,)
    angles: np.ndarray  # (T,)
    mirrored: bool


def cut_objects(image: np.ndarray, label: np.ndarray) -> list[Cutout]:
    """Every object id of `label` (H, W) as a Cutout of `image` (H, W, 3), by id."""
    cutouts = []
    for object_id in [int(v) for v in np.unique(label) if v != 0]:
        alpha = label == object_id
        if alpha.sum() < MIN_CUTOUT_PIXELS:
            continue
        rows, cols = np.nonzero(alpha.any(axis=1))[0], np.nonzero(alpha.any(axis=0))[0]
        box = np.s_[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        cutouts.append(Cutout(image[box].copy(), alpha[box].copy()))
    return cutouts


def random_motion(rng: np.random.Generator, crop: int, num_frames: int,
                  meeting_point: np.ndarray, size_range: tuple[float, ...]) -> Motion:
    """A path through (near) `meeting_point` at a random frame, so that objects given the
    same point cross; the longer side starts at a share of `crop` drawn from `size_range`
    and, like the angle, drifts a little from frame to frame."""
    meet_at = float(rng.uniform(0, num_frames - 1))
    direction = rng.uniform(0, 2 * np.pi)
    speed = rng.uniform(0.03, 0.15) * crop  # pixels per frame
    velocity = speed * np.array([np.cos(direction), np.sin(direction)])
    through = meeting_point + rng.normal(0, 0.05 * crop, size=2)
    times = np.arange(num_frames) - meet_at
    centres = through[None] + times[:, None] * velocity[None]
    size0 = rng.uniform(*size_range) * crop
    sizes = size0 * rng.uniform(0.9, 1.1) ** np.arange(num_frames)
    angles = rng.uniform(-15, 15) + rng.uniform(-8, 8) * np.arange(num_frames)
    return Motion(centres, sizes, angles, bool(rng.random() < 0.5))


def render_cutout(cutout: Cutout, size: float, angle: float, mirrored: bool):
    """The cut-out scaled so that its longer side is `size`, mirrored and turned:
    -> rgb (h, w, 3) float, soft alpha (h, w) float in 0..1 for the image, hard mask (h, w)
    bool (soft alpha >= 0.5) for the labels."""
    h, w = cutout.alpha.shape
    scale = size / max(h, w)
    new_size = (max(1, round(w * scale)), max(1, round(h * scale)))
    rgba = np.dstack([cutout.rgb, cutout.alpha.astype(np.uint8) * 255])
    img = Image.fromarray(rgba, "RGBA").resize(new_size, Image.BILINEAR)
    if mirrored:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    img = img.rotate(angle, resample=Image.BILINEAR, expand=True)
    out = np.asarray(img, dtype=np.float32)
    alpha = out[..., 3] / 255
    return out[..., :3], alpha, alpha >= 0.5


def paste(frame: np.ndarray, label: np.ndarray, rgb, alpha, hard, centre, object_id: int):
    """Composite one rendered cut-out onto frame (H, W, 3) float and label (H, W) in place,
    centred at `centre` (x, y), clipped at the frame's borders."""
    height, width = label.shape
    h, w = hard.shape
    top, left = int(round(centre[1] - h / 2)), int(round(centre[0] - w / 2))
    t0, l0 = max(top, 0), max(left, 0)
    t1, l1 = min(top + h, height), min(left + w, width)
    if t0 >= t1 or l0 >= l1:
        return  # outside the frame
    src = np.s_[t0 - top:t1 - top, l0 - left:l1 - left]
    dst = np.s_[t0:t1, l0:l1]
    a = alpha[src][..., None]
    frame[dst] = a * rgb[src] + (1 - a) * frame[dst]
    label[dst][hard[src]] = object_id


def compose_clip(rng: np.random.Generator, frames: np.ndarray, labels: np.ndarray,
                 cutouts: list[Cutout], same_path_prob: float = 0.6,
                 sizes: tuple[float, ...] = DataConfig.paste_size):
    """Paste `cutouts` over a background clip, back to front in list order.

    sizes: the range of a cut-out's longer side at the start, as shares of the crop.
    frames: (T, H, W, 3) uint8 and labels (T, H, W) uint8 of the background (its own
    objects keep their ids); cut-out k gets id max(background ids) + 1 + k.
    -> frames (T, H, W, 3) uint8, labels (T, H, W) uint8."""
    num_frames, height, width = labels.shape
    crop = min(height, width)
    first_id = int(labels.max()) + 1
    out_frames = frames.astype(np.float32)
    out_labels = labels.copy()
    shared_point = rng.uniform(0.3, 0.7, size=2) * np.array([width, height])
    for k, cutout in enumerate(cutouts):
        point = (shared_point if rng.random() < same_path_prob
                 else rng.uniform(0.2, 0.8, size=2) * np.array([width, height]))
        motion = random_motion(rng, crop, num_frames, point, sizes)
        for t in range(num_frames):
            rgb, alpha, hard = render_cutout(cutout, motion.sizes[t], motion.angles[t],
                                             motion.mirrored)
            paste(out_frames[t], out_labels[t], rgb, alpha, hard, motion.centres[t],
                  first_id + k)
    return np.clip(out_frames + 0.5, 0, 255).astype(np.uint8), out_labels


def pick_cutouts(rng: np.random.Generator, load_still, num_stills: int, count: int,
                 twin_prob: float = 0.3, attempts: int = 50) -> list[Cutout]:
    """`count` cut-outs, in a random depth order: several instances of one still when it has
    them (half the time), else one from each random still; a cut-out may be pasted twice
    (`twin_prob`). `load_still(i)` gives the cut-outs of still i (maybe none)."""
    chosen: list[Cutout] = []
    for _ in range(attempts):
        if len(chosen) >= count:
            break
        objects = load_still(int(rng.integers(num_stills)))
        if not objects:
            continue
        if len(objects) > 1 and rng.random() < 0.5:
            take = rng.permutation(len(objects))[:count - len(chosen)]
            chosen += [objects[int(i)] for i in take]
            continue
        cutout = objects[int(rng.integers(len(objects)))]
        chosen.append(cutout)
        if len(chosen) < count and rng.random() < twin_prob:
            chosen.append(cutout)
    return [chosen[int(i)] for i in rng.permutation(len(chosen))]
