"""Training samples for the learned prompt network: one object of a still or an annotated
video frame, seen through the window of a box drawn around it the way people draw boxes
(a little loose or tight, off centre), sometimes with clicks, sometimes clicks alone; often
with the boxes of the image's other objects, with another object (or a copy of itself)
pasted over or under it, or made small (`lgdk.train.prompt_scenes`)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy import ndimage
from torch.utils.data import Dataset

from lgdk.data.layouts import image_mask_pairs
from lgdk.data.masks import object_ids, read_mask
from lgdk.prompts.crop import Window, box_window, crop, frame_window, prompt_maps
from lgdk.prompts.net import PromptNetConfig
from lgdk.prompts.spec import Box, Click, box_region, tight_box
from lgdk.train.prompt_scenes import (
    Scene,
    cut_object,
    object_boxes,
    paste_large_behind,
    paste_near,
    shrunk,
)

MIN_PIXELS = 100  # smaller objects are left out


@dataclass(frozen=True)
class PromptSampling:
    box_jitter: float = 0.08  # std of each box side's shift, as a share of the box size
    clicks_only: float = 0.15  # share of samples with clicks and no box
    random_clicks: float = 0.25  # share of boxed samples with 1-2 random clicks
    held_out: float = 0.04  # share of images kept out of training, to watch over it
    others_given: float = 0.7  # share of samples given the other objects' boxes
    paste: float = 0.5  # share of samples with another object pasted over or under it
    look_alike: float = 0.5  # share of the pastes that are a copy of the object itself
    large_behind: float = 0.3  # share of the pastes that are a larger object around it
    small: float = 0.2  # share of samples whose image is shrunk so that the object is small
    others_clicked: float = 0.0  # share of samples with a negative click on another object
    small_side: tuple[float, float] = (12.0, 48.0)  # its box's longer side then, pixels
    # a paste's edge is feathered by a Gaussian of sigma up to this share of its longer
    # side (prompt_scenes.composite); 0: hard edges (every run before it)
    feather: float = 0.0


@dataclass(frozen=True)
class ObjectRef:
    image: Path
    mask: Path
    object_id: int


def list_objects(roots: list[str | Path]) -> list[ObjectRef]:
    """Every object of every image + mask pair under the roots (stills or DAVIS layouts)."""
    refs = []
    for root in roots:
        for image, mask_path in image_mask_pairs(Path(root)):
            ids = read_mask(mask_path)
            refs += [ObjectRef(image, mask_path, i) for i in object_ids(ids)
                     if (ids == i).sum() >= MIN_PIXELS]
    return refs


def is_held_out(ref: ObjectRef, share: float) -> bool:
    """A fixed choice by image name, the same on every machine."""
    return zlib.crc32(str(ref.image.name).encode()) % 10_000 < share * 10_000


def jittered_box(rng: np.random.Generator, box: Box, jitter: float, height: int,
                 width: int) -> Box:
    w, h = box.x1 - box.x0, box.y1 - box.y0
    dx0, dx1 = rng.normal(0, jitter * w, 2)
    dy0, dy1 = rng.normal(0, jitter * h, 2)
    x0, x1 = np.clip([box.x0 + dx0, box.x1 + dx1], 0, width)
    y0, y1 = np.clip([box.y0 + dy0, box.y1 + dy1], 0, height)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return box
    return Box(float(x0), float(y0), float(x1), float(y1))


def interior_click(rng: np.random.Generator, region: np.ndarray, positive: bool) -> Click:
    """A click inside a region, drawn towards its interior (as people click)."""
    depth = ndimage.distance_transform_edt(region)
    weights = (depth ** 2).ravel()
    index = rng.choice(weights.size, p=weights / weights.sum())
    y, x = np.unravel_index(index, region.shape)
    return Click(float(x) + 0.5, float(y) + 0.5, positive)


def random_clicks(rng: np.random.Generator, mask: np.ndarray, box: Box) -> list[Click]:
    clicks = [interior_click(rng, mask, True)]
    background = box_region(box, *mask.shape) & ~mask
    if rng.random() < 0.5 and background.sum() >= MIN_PIXELS:
        clicks.append(interior_click(rng, background, False))
    return clicks


def other_object_click(rng: np.random.Generator, scene: Scene, window: Window) -> list[Click]:
    """A negative click inside another object of the scene, seen in the window (as another
    object's positive click reaches this one, `lgdk.prompts.make`); [] when none is."""
    inside = box_region(Box(*(max(0.0, v) for v in (window.x0, window.y0, window.x1,
                                                     window.y1))), *scene.ids.shape)
    regions = [r for o in scene.other_ids(MIN_PIXELS // 4)
               if (r := (scene.ids == o) & inside).sum() >= MIN_PIXELS // 4]
    if not regions:
        return []
    return [interior_click(rng, regions[int(rng.integers(len(regions)))], False)]


class PromptDataset(Dataset):
    """Items: image (3, S, S) float in 0..1, maps (PROMPT_CHANNELS, S, S), target
    (1, S, S) float in {0, 1}."""

    def __init__(self, objects: list[ObjectRef], net: PromptNetConfig,
                 sampling: PromptSampling = PromptSampling(), seed: int = 0,
                 augment: bool = True) -> None:
        self.objects, self.net, self.sampling = objects, net, sampling
        self.seed, self.augment = seed, augment

    def __len__(self) -> int:
        return len(self.objects)

    def load(self, index: int) -> Scene:
        ref = self.objects[index]
        image = np.asarray(Image.open(ref.image).convert("RGB"))
        return Scene(image, read_mask(ref.mask), ref.object_id)

    def scene(self, rng: np.random.Generator, index: int) -> Scene:
        """The object's image, flipped, with an object pasted near it, made small, as
        the sampling draws."""
        scene, s = self.load(index), self.sampling
        if not self.augment:
            return scene
        if rng.random() < 0.5:
            scene = scene.flipped()
        if rng.random() < s.paste:
            scene = self.pasted(rng, scene) or scene
        if rng.random() < s.small:
            scene = shrunk(scene, rng.uniform(*s.small_side))
        return scene

    def pasted(self, rng: np.random.Generator, scene: Scene) -> Scene | None:
        """Another object (or a copy of this one) pasted over or under it, or a larger
        object behind it; None when the paste did not fit."""
        s = self.sampling
        if rng.random() < s.large_behind:
            other = self.load(int(rng.integers(len(self.objects))))
            return paste_large_behind(rng, scene, *cut_object(other.image, other.mask),
                                      feather=s.feather)
        source = (scene if rng.random() < s.look_alike
                  else self.load(int(rng.integers(len(self.objects)))))
        pixels, mask = cut_object(source.image, source.mask)
        if rng.random() < 0.5:
            pixels, mask = pixels[:, ::-1].copy(), mask[:, ::-1].copy()
        return paste_near(rng, scene, pixels, mask, rng.random() < 0.5, s.feather)

    def __getitem__(self, index: int):
        rng = np.random.default_rng([self.seed, index, torch.randint(1 << 30, ()).item()]
                                    if self.augment else [self.seed, index])
        scene = self.scene(rng, index)
        image, mask = scene.image, scene.mask
        height, width = mask.shape
        s = self.sampling
        box = tight_box(mask)
        others = []
        if not self.augment or rng.random() < s.others_given:
            others = object_boxes(scene, scene.other_ids(MIN_PIXELS // 4))
        if self.augment:
            box = jittered_box(rng, box, s.box_jitter, height, width)
            others = [jittered_box(rng, b, s.box_jitter, height, width) for b in others]
        window = box_window(box, self.net.expand, self.net.max_aspect)
        if self.augment and rng.random() < s.clicks_only:
            # clicks alone are looked at over the frame, then through the found mask's box
            if rng.random() < 0.5:
                window = frame_window(height, width)
            box, clicks = None, [interior_click(rng, mask, True)]
        else:
            clicks = (random_clicks(rng, mask, box)
                      if self.augment and rng.random() < s.random_clicks else [])
        if self.augment and rng.random() < s.others_clicked:
            clicks += other_object_click(rng, scene, window)
        size = self.net.size
        rgb = crop(image, window, size)
        if self.augment:
            rgb = _colour_jitter(rng, rgb)
        target = crop(mask.astype(np.uint8) * 255, window, size) >= 128
        return (torch.from_numpy(rgb.transpose(2, 0, 1).copy()).float() / 255,
                torch.from_numpy(prompt_maps(window, size, box, clicks, others)),
                torch.from_numpy(target[None].astype(np.float32)))


def _colour_jitter(rng: np.random.Generator, rgb: np.ndarray) -> np.ndarray:
    gain = rng.uniform(0.8, 1.2, 3) * rng.uniform(0.8, 1.2)
    return np.clip(rgb * gain + rng.uniform(-20, 20), 0, 255).astype(np.uint8)


def correcting_click(pred: np.ndarray, truth: np.ndarray) -> Click | None:
    """Where a person would click to correct a mask: the interior point (farthest from its
    edge) of the largest wrong region, positive where the object was missed, negative where
    background was taken. None when the mask is right."""
    wrong = pred != truth
    pieces, count = ndimage.label(wrong)
    if count == 0:
        return None
    largest = 1 + int(np.argmax(ndimage.sum(wrong, pieces, range(1, count + 1))))
    depth = ndimage.distance_transform_edt(pieces == largest)
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return Click(float(x) + 0.5, float(y) + 0.5, positive=bool(truth[y, x]))
