"""Training clips from several sources, mixed by weight, each item a pure function of
(seed, index) so that a resumed or distributed run sees exactly the same data."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from lgdk.config import DataConfig
from lgdk.data.augment import clip_augment, pseudo_video
from lgdk.data.crowd import CrowdSource
from lgdk.data.layouts import DataError, davis_frames, davis_sequences, image_mask_pairs
from lgdk.data.masks import VOID, read_mask
from lgdk.data.paste import compose_clip, cut_objects, pick_cutouts
from lgdk.data.procedural import generate_clip
from lgdk.data.sampling import clip_order

log = logging.getLogger(__name__)


def _load_pair(image: Path, mask: Path) -> tuple[torch.Tensor, torch.Tensor]:
    img = torch.from_numpy(np.array(Image.open(image).convert("RGB"))).permute(2, 0, 1)
    lbl = read_mask(mask)
    lbl[lbl == VOID] = 0
    return img.contiguous(), torch.from_numpy(lbl)[None]


class ProceduralSource:
    def __init__(self, cfg: DataConfig) -> None:
        self.cfg = cfg

    def sample(self, rng: np.random.Generator, max_gap: int):
        clip = generate_clip(rng, self.cfg.crop, self.cfg.crop, self.cfg.num_frames)
        frames = torch.from_numpy(clip.frames).permute(0, 3, 1, 2).contiguous()
        return frames, torch.from_numpy(clip.labels)


class StaticSource:
    """Stills (image + mask) turned into pseudo-videos."""

    def __init__(self, cfg: DataConfig, roots: tuple[str, ...]) -> None:
        self.cfg = cfg
        self.pairs = [pair for root in roots for pair in image_mask_pairs(Path(root))]
        if not self.pairs:
            raise DataError(f"no image + mask pairs found under {', '.join(roots)}")

    def sample(self, rng: np.random.Generator, max_gap: int):
        image, mask = self.pairs[int(rng.integers(len(self.pairs)))]
        img, lbl = _load_pair(image, mask)
        return pseudo_video(rng, img, lbl, self.cfg.num_frames, self.cfg.crop,
                            self.cfg.crop_scale)


class PasteSource:
    """Multi-object clips (`lgdk.data.paste`): 1..`paste_objects` objects cut out of the
    `paste_roots` stills, moving over a background still (from those and the
    `paste_background_roots`) that is itself a pseudo-video with its own objects."""

    def __init__(self, cfg: DataConfig) -> None:
        self.cfg = cfg
        self.pairs = [pair for root in cfg.paste_roots for pair in image_mask_pairs(Path(root))]
        self.backgrounds = self.pairs + [pair for root in cfg.paste_background_roots
                                         for pair in image_mask_pairs(Path(root))]
        if not self.pairs:
            raise DataError(f"no image + mask pairs to cut objects from under "
                            f"{', '.join(cfg.paste_roots) or 'data.paste_roots (empty)'}")
        size = tuple(cfg.paste_size)
        if len(size) != 2 or not 0 < size[0] <= size[1] <= 1:
            raise DataError(f"data.paste_size {list(cfg.paste_size)}: give two shares of the "
                            "crop, 0 < smallest <= largest <= 1, e.g. [0.25, 0.7]")

    def _cutouts(self, index: int):
        img, lbl = _load_pair(*self.pairs[index])
        return cut_objects(img.permute(1, 2, 0).numpy(), lbl[0].numpy())

    def sample(self, rng: np.random.Generator, max_gap: int):
        img, lbl = _load_pair(*self.backgrounds[int(rng.integers(len(self.backgrounds)))])
        frames, labels = pseudo_video(rng, img, lbl, self.cfg.num_frames, self.cfg.crop,
                                      self.cfg.crop_scale)
        count = int(rng.integers(1, self.cfg.paste_objects + 1))
        cutouts = pick_cutouts(rng, self._cutouts, len(self.pairs), count)
        frames, labels = compose_clip(rng, frames.permute(0, 2, 3, 1).numpy(), labels.numpy(),
                                      cutouts, sizes=self.cfg.paste_size)
        return torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels)


class VideoSource:
    """Annotated videos in DAVIS / YouTube-VOS layout; `gap_divisor` shrinks the frame gap
    for data sets annotated sparsely (YouTube-VOS: every 5th frame)."""

    def __init__(self, cfg: DataConfig, roots: tuple[str, ...], gap_divisor: int = 1) -> None:
        self.cfg, self.gap_divisor = cfg, gap_divisor
        self.videos = []
        for root in roots:
            for seq in davis_sequences(Path(root)):
                frames = [(i, m) for i, m in davis_frames(Path(root), seq) if m is not None]
                if len(frames) >= cfg.num_frames:
                    self.videos.append(frames)
        if not self.videos:
            raise DataError(f"no annotated sequences of {cfg.num_frames}+ frames under "
                            f"{', '.join(roots)}")

    def sample(self, rng: np.random.Generator, max_gap: int):
        frames = self.videos[int(rng.integers(len(self.videos)))]
        gap = max(1, max_gap // self.gap_divisor)
        order = clip_order(rng, len(frames), self.cfg.num_frames, gap)
        images, labels = zip(*(_load_pair(*frames[i]) for i in order))
        return clip_augment(rng, list(images), list(labels), self.cfg.crop,
                            self.cfg.crop_scale)


def select_objects(rng, labels: torch.Tensor, max_objects: int, min_pixels: int = 20):
    """Keep up to max_objects ids visible in frame 0, renumbered 1..n (the others 0, void
    kept: only crowd clips have any). None if none."""
    ids, counts = torch.unique(labels[0], return_counts=True)
    visible = [int(i) for i, c in zip(ids, counts) if i not in (0, VOID) and c >= min_pixels]
    if not visible:
        return None
    keep = rng.permutation(visible)[:max_objects]
    out = torch.where(labels == VOID, VOID, 0).to(labels.dtype)  # void stays void
    for new_id, old_id in enumerate(keep, start=1):
        out[labels == int(old_id)] = new_id
    return out, len(keep)


def max_gap_at(cfg: DataConfig, progress: float) -> int:
    """STCN's curriculum: the gap for the last milestone that `progress` (0..1) passed."""
    gap = cfg.max_gap_schedule[0]
    for milestone, value in zip(cfg.max_gap_milestones, cfg.max_gap_schedule):
        if progress >= milestone:
            gap = value
    return gap


class ClipDataset(Dataset):
    """Item i: frames (T, 3, C, C) float in 0..1, first-frame masks (K, C, C) float for K =
    max_objects (empty past the clip's n objects), labels (T, C, C) long in 0..n."""

    def __init__(self, cfg: DataConfig, length: int, seed: int = 0) -> None:
        self.cfg, self.length, self.seed = cfg, length, seed
        self.sources, self.weights = [], []
        candidates = [
            (cfg.procedural_weight, lambda: ProceduralSource(cfg)),
            (cfg.static_weight, lambda: StaticSource(cfg, cfg.static_roots)),
            (cfg.video_weight, lambda: VideoSource(cfg, cfg.video_roots)),
            (cfg.youtube_weight, lambda: VideoSource(cfg, cfg.youtube_roots, 5)),
            (cfg.bl30k_weight, lambda: VideoSource(cfg, cfg.bl30k_roots)),
            (cfg.paste_weight, lambda: PasteSource(cfg)),
            (cfg.crowd_weight, lambda: CrowdSource(cfg)),
        ]
        for weight, make in candidates:
            if weight > 0:
                self.sources.append(make())
                self.weights.append(weight)
        if not self.sources:
            raise DataError("no training data: give at least one data source a weight > 0")
        self.weights = np.asarray(self.weights) / np.sum(self.weights)

    def __len__(self) -> int:
        return self.length

    def source_index(self, rng: np.random.Generator) -> int:
        return int(rng.choice(len(self.sources), p=self.weights))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, index])
        gap = max_gap_at(self.cfg, index / max(1, self.length))
        for _ in range(20):
            source = self.sources[self.source_index(rng)]
            try:
                frames, labels = source.sample(rng, gap)
            except (OSError, ValueError) as exc:  # a corrupt or missing file: skip it
                log.warning("skipping an unreadable training sample: %s", exc)
                continue
            picked = select_objects(rng, labels, self.cfg.max_objects)
            if picked is not None:
                return self._pack(frames, *picked)
        raise DataError("20 draws in a row gave no usable clip; check the training data")

    def _pack(self, frames, labels, count) -> dict[str, torch.Tensor]:
        k = self.cfg.max_objects
        ids = torch.arange(1, k + 1).view(k, 1, 1)
        return {
            "frames": frames.float() / 255,
            "first_masks": (labels[0][None] == ids).float(),
            "labels": labels.long(),
            "num_objects": torch.tensor(count),
        }
