"""Test-time augmentation and ensembles: predictors that wrap predictors.

    Averaging([Predictor(model_a, settings), Flipped(Predictor(model_a, settings)), ...])

Each wrapper offers `predict` and `memorize` like the predictor it wraps, so they nest;
every wrapped predictor memorises the combined result.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from lgdk.config import MAX_OBJECTS, InferenceConfig
from lgdk.infer.backend import StepModel
from lgdk.infer.predictor import Predictor, Streaming


class Flipped(Streaming):
    """A predictor that sees every frame mirrored left to right; its probabilities are
    mirrored back."""

    def __init__(self, inner: Streaming) -> None:
        super().__init__(inner.max_objects)
        self.inner = inner

    @property
    def processing_side(self) -> int | None:
        return self.inner.processing_side

    def predict(self, frame: np.ndarray) -> torch.Tensor:
        return self.inner.predict(frame[:, ::-1]).flip(-1)

    def memorize(self, probs: torch.Tensor, given: bool = False) -> None:
        self.inner.memorize(probs.flip(-1), given)


class Averaging(Streaming):
    """Runs every wrapped predictor on each frame and averages their probabilities
    (flip, scales, ensembles); each wrapped predictor then memorises the average."""

    def __init__(self, predictors: list[Streaming], max_objects: int = MAX_OBJECTS) -> None:
        if not predictors:
            raise ValueError("Averaging needs at least one predictor")
        super().__init__(max_objects)
        self.predictors = predictors

    @property
    def processing_side(self) -> int | None:
        sides = [p.processing_side for p in self.predictors]
        return None if None in sides else min(sides)

    def predict(self, frame: np.ndarray) -> torch.Tensor:
        return torch.stack([p.predict(frame) for p in self.predictors]).mean(dim=0)

    def memorize(self, probs: torch.Tensor, given: bool = False) -> None:
        for p in self.predictors:
            p.memorize(probs, given)


def make_predictor(models: list[StepModel], settings: InferenceConfig,
                   device: str | torch.device = "cpu", progress: bool = False) -> Streaming:
    """One predictor per (model, scale, flip) combination (`settings.scales`, or its
    `size`; `settings.flip`), averaged when there is more than one; with
    `settings.adapt_steps`, on copies of the models that adapt to each given mask; with
    `settings.object_cells` (and no `scales`), at the size the first mask's objects need."""
    if settings.object_cells and not settings.scales:
        from lgdk.infer.scale import ObjectScaled

        return ObjectScaled(lambda sized: make_predictor(
            models, dataclasses.replace(sized, object_cells=0.0), device, progress), settings)
    if settings.adapt_steps:
        from lgdk.infer.adapt import Adapting, adaptable_copies

        copies = adaptable_copies(models)
        plain = dataclasses.replace(settings, adapt_steps=0)
        return Adapting(make_predictor(copies, plain, device), copies, settings, device,
                        progress)
    members: list[Streaming] = []
    for model in models:
        for size in settings.scales or (settings.size,):
            sized = dataclasses.replace(settings, size=size)
            members.append(Predictor(model, sized, device))
            if settings.flip:
                members.append(Flipped(Predictor(model, sized, device)))
    if len(members) == 1:
        return members[0]
    return Averaging(members, settings.max_objects)
