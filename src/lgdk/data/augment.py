"""Joint image + mask augmentation, every random draw from an explicit numpy Generator.

Images are (3, H, W) uint8 tensors, label maps (1, H, W) uint8 tensors; geometric
transforms use bilinear interpolation for images and nearest for labels, with the same
parameters, so a pixel and its label move together.
"""

from __future__ import annotations

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from torchvision.transforms import InterpolationMode

NEAREST, BILINEAR = InterpolationMode.NEAREST, InterpolationMode.BILINEAR


def random_affine(rng, image, label, degrees=20.0, scale=(0.9, 1.1), shear=10.0, shift=0.05):
    h, w = image.shape[-2:]
    angle = float(rng.uniform(-degrees, degrees))
    s = float(rng.uniform(*scale))
    sh = [float(rng.uniform(-shear, shear)), 0.0]
    tr = [int(rng.uniform(-shift, shift) * w), int(rng.uniform(-shift, shift) * h)]
    image = TF.affine(image, angle=angle, translate=tr, scale=s, shear=sh, interpolation=BILINEAR)
    label = TF.affine(label, angle=angle, translate=tr, scale=s, shear=sh, interpolation=NEAREST)
    return image, label


def random_perspective(rng, image, label, distortion=0.15):
    h, w = image.shape[-2:]
    start = [[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]]
    dx, dy = distortion * w / 2, distortion * h / 2
    end = [[int(x + rng.uniform(-dx, dx)), int(y + rng.uniform(-dy, dy))] for x, y in start]
    image = TF.perspective(image, start, end, interpolation=BILINEAR)
    label = TF.perspective(label, start, end, interpolation=NEAREST)
    return image, label


def colour_jitter(rng, image, strength=0.2):
    image = TF.adjust_brightness(image, float(rng.uniform(1 - strength, 1 + strength)))
    image = TF.adjust_contrast(image, float(rng.uniform(1 - strength, 1 + strength)))
    image = TF.adjust_saturation(image, float(rng.uniform(1 - strength, 1 + strength)))
    return TF.adjust_hue(image, float(rng.uniform(-0.03, 0.03)))


def crop_params(rng, height, width, crop, scale=(0.36, 1.0),
                around: tuple[float, float] | None = None) -> tuple[int, int, int, int]:
    """A random-resized-crop box (top, left, h, w) of square aspect inside the frame;
    with `around` (y, x), one that holds that point."""
    area = height * width * float(rng.uniform(*scale))
    side = int(min(np.sqrt(area), height, width))
    side = max(side, min(height, width, crop // 2))
    if around is None:
        top = int(rng.integers(0, height - side + 1))
        left = int(rng.integers(0, width - side + 1))
        return top, left, side, side
    y, x = around
    top = int(rng.integers(max(0, int(y) - side + 1), min(height - side, int(y)) + 1))
    left = int(rng.integers(max(0, int(x) - side + 1), min(width - side, int(x)) + 1))
    return top, left, side, side


def resized_crop(image, label, box, crop):
    top, left, h, w = box
    image = TF.resized_crop(image, top, left, h, w, [crop, crop], interpolation=BILINEAR,
                            antialias=True)
    label = TF.resized_crop(label, top, left, h, w, [crop, crop], interpolation=NEAREST)
    return image, label


def pseudo_video(rng, image, label, num_frames, crop, scale=(0.5, 1.0)):
    """A still image + label -> (T, 3, crop, crop) frames and (T, crop, crop) labels.

    Every frame is the image under its own random affine + perspective + colour jitter,
    as STCN's stage 0; frame 0 is drawn the same way."""
    h, w = image.shape[-2:]
    box = crop_params(rng, h, w, crop, scale)
    base_img, base_lbl = resized_crop(image, label, box, crop)
    frames, labels = [], []
    for _ in range(num_frames):
        img, lbl = random_affine(rng, base_img, base_lbl)
        if rng.random() < 0.5:
            img, lbl = random_perspective(rng, img, lbl)
        frames.append(colour_jitter(rng, img))
        labels.append(lbl[0])
    return torch.stack(frames), torch.stack(labels)


def clip_augment(rng, images, labels, crop, scale=(0.36, 1.0), box=None):
    """Frames of a real clip: one random resized crop (`box`, else drawn) and flip for the
    whole clip, then a small per-frame affine and colour jitter. images: list of
    (3, H, W) uint8."""
    h, w = images[0].shape[-2:]
    box = crop_params(rng, h, w, crop, scale) if box is None else box
    flip = rng.random() < 0.5
    frames, out_labels = [], []
    for image, label in zip(images, labels):
        img, lbl = resized_crop(image, label, box, crop)
        if flip:
            img, lbl = TF.horizontal_flip(img), TF.horizontal_flip(lbl)
        img, lbl = random_affine(rng, img, lbl, degrees=5, scale=(0.95, 1.05), shear=3,
                                 shift=0.02)
        frames.append(colour_jitter(rng, img, 0.1))
        out_labels.append(lbl[0])
    return torch.stack(frames), torch.stack(out_labels)
