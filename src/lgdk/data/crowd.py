"""Real crowd clips for training: MOTSChallenge street video, every frame's instance
masks with persistent ids (`../shared/data/mots/prepare.py` writes it in DAVIS layout).

A clip is `num_frames` frames at the curriculum's gap, and 2-6 people of its first frame
whose boxes touch or overlap (a group a user would find hard to keep apart). The group's
ids become 1..k; every other person is background, so that the neighbours the group
stands among are look-alikes that carry no id. MOTS's void (people it did not label,
ambiguous regions) stays void: the loss ignores it (`lgdk.models.loss`).
Only `crowd_sequences` are read (the training part); the others are how crowds are
measured.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lgdk.config import DataConfig
from lgdk.data.augment import clip_augment, crop_params
from lgdk.data.layouts import DataError, davis_frames
from lgdk.data.masks import VOID, read_mask
from lgdk.data.sampling import clip_order

MIN_PIXELS = 200  # a person smaller than this in the first frame is not picked
TOUCH = 0.25  # boxes touch when one grown by this share of its size meets the other


def crowd_clips(roots: tuple[str, ...], sequences: tuple[str, ...], num_frames: int
                ) -> list[list[tuple[Path, Path]]]:
    """The (image, mask) frames of each sequence named in `sequences` under `roots` (DAVIS
    layouts, their frames in JPEGImages/<seq>/ or JPEGImages/480p/<seq>/)."""
    videos = []
    for root in map(Path, roots):
        nested = "480p/" if (root / "JPEGImages" / "480p").is_dir() else ""
        for seq in sequences:
            if not (root / "JPEGImages" / f"{nested}{seq}").is_dir():
                continue
            frames = [(i, m) for i, m in davis_frames(root, nested + seq) if m is not None]
            if len(frames) >= num_frames:
                videos.append(frames)
    if not videos:
        raise DataError(f"no crowd sequence ({', '.join(sequences)}) of {num_frames}+ "
                        f"annotated frames under {', '.join(roots) or 'data.crowd_roots'}; "
                        "prepare MOTSChallenge with ../shared/data/mots/prepare.py")
    return videos


def boxes_of(first: np.ndarray, min_pixels: int = MIN_PIXELS) -> dict[int, tuple]:
    """(y0, y1, x0, x1) of each id with at least `min_pixels` pixels (void left out)."""
    out = {}
    for i in np.unique(first):
        if i in (0, VOID):
            continue
        ys, xs = np.nonzero(first == i)
        if len(ys) >= min_pixels:
            out[int(i)] = (ys.min(), ys.max(), xs.min(), xs.max())
    return out


def touch(a: tuple, b: tuple) -> bool:
    """Whether box a, grown by TOUCH of its size on each side, meets box b."""
    gy, gx = TOUCH * (a[1] - a[0] + 1), TOUCH * (a[3] - a[2] + 1)
    return (a[0] - gy <= b[1] and b[0] <= a[1] + gy
            and a[2] - gx <= b[3] and b[2] <= a[3] + gx)


def touching_group(rng: np.random.Generator, first: np.ndarray, low: int, high: int
                   ) -> list[int]:
    """Up to k in [low, high] ids of `first` (H, W) grown from a random one, each next one
    touching one already in the group (fewer where fewer touch; [] where none is large
    enough)."""
    boxes = boxes_of(first)
    if not boxes:
        return []
    ids = sorted(boxes)
    group = [ids[int(rng.integers(len(ids)))]]
    want = int(rng.integers(low, high + 1))
    while len(group) < want:
        near = [i for i in ids if i not in group
                and any(touch(boxes[g], boxes[i]) or touch(boxes[i], boxes[g]) for g in group)]
        if not near:
            break
        group.append(near[int(rng.integers(len(near)))])
    return group


def remap_group(labels: torch.Tensor, group: list[int]) -> torch.Tensor:
    """(T, H, W) track ids -> the group's as 1..k, void kept, everyone else 0."""
    out = torch.where(labels == VOID, VOID, 0).to(torch.uint8)
    for new, track in enumerate(group, 1):
        out[labels == track] = new
    return out


class CrowdSource:
    """Clips of touching people from real crowd video (module docstring)."""

    def __init__(self, cfg: DataConfig) -> None:
        self.cfg = cfg
        self.videos = crowd_clips(cfg.crowd_roots, cfg.crowd_sequences, cfg.num_frames)

    def sample(self, rng: np.random.Generator, max_gap: int):
        frames = self.videos[int(rng.integers(len(self.videos)))]
        order = clip_order(rng, len(frames), self.cfg.num_frames, max_gap)
        masks = [read_mask(frames[i][1]) for i in order]
        low, high = self.cfg.crowd_tracks
        group = touching_group(rng, masks[0], low, high)
        if not group:
            raise ValueError("no person large enough in the clip's first frame")
        labels = remap_group(torch.from_numpy(np.stack(masks)), group)
        images = [torch.from_numpy(np.array(Image.open(frames[i][0]).convert("RGB")))
                  .permute(2, 0, 1).contiguous() for i in order]
        box = crop_params(rng, *masks[0].shape, self.cfg.crop, self.cfg.crop_scale,
                          around=_centre(labels[0] > 0))
        return clip_augment(rng, images, [lbl[None] for lbl in labels], self.cfg.crop,
                            self.cfg.crop_scale, box=box)


def _centre(region: torch.Tensor) -> tuple[float, float]:
    """(y, x) centre of a (H, W) bool region's box (its pixels exist)."""
    ys, xs = torch.nonzero(region, as_tuple=True)
    return (float(ys.min() + ys.max()) / 2, float(xs.min() + xs.max()) / 2)
