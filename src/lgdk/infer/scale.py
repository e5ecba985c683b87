"""A processing size that follows the objects (`--object-cells`).

A fixed processing size spends pixels on large objects and starves small ones: an object
of 20x20 pixels in a 240p video covers about two stride-16 cells at size 384, too few for
its key to tell it from a neighbour. `ObjectScaled` wraps the predictor(s) of one pass and
builds them when the first mask arrives, at the size that gives the smallest object of
that mask `settings.object_cells` cells across (the square root of its area), never below
`settings.size` and never above `settings.max_size`. A large object keeps `size`, and its
speed. The size is chosen once a pass: memory keys of two sizes do not mix, so objects
that appear later are processed at the size the first mask chose.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
import torch

from lgdk.config import InferenceConfig
from lgdk.data.masks import VOID
from lgdk.infer.predictor import Streaming

STRIDE = 16  # the memory read's stride: an object's key is one vector per 16x16 pixels


def size_for_objects(mask: np.ndarray, settings: InferenceConfig) -> int:
    """(H, W) object ids -> the processing shorter side for these objects."""
    if not settings.object_cells or not settings.size:
        return settings.size
    counts = np.bincount(mask.ravel(), minlength=1)
    areas = [int(c) for i, c in enumerate(counts) if i not in (0, VOID) and c]
    if not areas:
        return settings.size
    side = math.sqrt(min(areas))  # the smallest object's side in the frame's pixels
    needed = settings.object_cells * STRIDE * min(mask.shape) / side
    needed = math.ceil(needed / STRIDE) * STRIDE
    return int(min(max(settings.size, needed), max(settings.size, settings.max_size)))


class ObjectScaled(Streaming):
    """make(settings) -> the predictor(s) of one pass at `settings.size`; built at the
    first mask, at `size_for_objects` of it. `size` is the one chosen (None before)."""

    def __init__(self, make: Callable[[InferenceConfig], Streaming],
                 settings: InferenceConfig) -> None:
        self.make, self.settings = make, settings
        self.inner: Streaming | None = None
        self.size: int | None = None

    @property
    def object_ids(self) -> list[int]:
        return self.inner.object_ids if self.inner is not None else []

    @property
    def max_objects(self) -> int:
        return self.settings.max_objects

    @property
    def processing_side(self) -> int | None:
        return self.size

    def step(self, frame: np.ndarray, mask: np.ndarray | None = None) -> torch.Tensor:
        if self.inner is None and mask is not None:
            self._start(mask)
        if self.inner is None:
            return _nothing(frame)
        return self.inner.step(frame, mask)

    def predict(self, frame: np.ndarray) -> torch.Tensor:
        return _nothing(frame) if self.inner is None else self.inner.predict(frame)

    def memorize(self, probs: torch.Tensor, given: bool = False) -> None:
        if self.inner is None:
            if probs.shape[0] > 1:
                raise RuntimeError("ObjectScaled chooses its size from the first mask: give "
                                   "it with step(frame, mask)")
            return
        self.inner.memorize(probs, given)

    def _start(self, mask: np.ndarray) -> None:
        self.size = size_for_objects(mask, self.settings)
        self.inner = self.make(dataclasses.replace(self.settings, size=self.size))


def _nothing(frame: np.ndarray) -> torch.Tensor:
    """Probabilities (1, H, W) of a frame before any object: all background."""
    return torch.ones(1, *frame.shape[:2])
