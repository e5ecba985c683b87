"""Test-time augmentation and ensembles: predictors that wrap predictors."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from lgdk.infer.predictor import Predictor, PredictorOptions, Streaming
from lgdk.models.network import LGDK


class AveragingPredictor(Streaming):
    """Runs every wrapped predictor on each frame and averages their probabilities
    (flip, scales, ensembles); each wrapped predictor then memorises the average."""

    def __init__(self, predictors: list[Streaming], max_objects: int = 32) -> None:
        if not predictors:
            raise ValueError("AveragingPredictor needs at least one predictor")
        self.predictors = predictors
        self.object_ids: list[int] = []
        self.max_objects = max_objects

    def predict(self, frame: np.ndarray) -> torch.Tensor:
        outputs = [p.predict(frame) for p in self.predictors]
        return torch.stack(outputs).mean(dim=0)

    def memorize(self, probs: torch.Tensor, given: bool = False) -> None:
        for p in self.predictors:
            p.memorize(probs, given)


def make_predictor(models: list[LGDK], options: PredictorOptions, device: str,
                   flip: bool = False, scales: list[int] | None = None) -> Streaming:
    """One predictor per (model, scale, flip) combination, averaged when more than one."""
    sizes = scales or [options.size]
    flips = [False, True] if flip else [False]
    members: list[Streaming] = [
        Predictor(model, dataclasses.replace(options, size=size, flip=f), device)
        for model in models for size in sizes for f in flips
    ]
    if len(members) == 1:
        return members[0]
    return AveragingPredictor(members, options.max_objects)
