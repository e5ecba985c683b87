"""The validation hook: segment a DAVIS-layout folder with the model being trained, then
score it with the project's evaluation, exactly as `lgdk segment` + `lgdk eval` would."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from lgdk.config import InferenceConfig
from lgdk.eval.davis import evaluate
from lgdk.infer.predictor import Predictor
from lgdk.video.engine import segment_dataset


def validate(model, root: str | Path, device: str, settings: InferenceConfig) -> float:
    """J&F-Mean of `model` on every sequence of `root` (a DAVIS layout), at `settings`
    (the training config's `inference` section; the memory read of the model's own)."""
    was_training = model.training
    work = Path(tempfile.mkdtemp(prefix="lgdk-val-"))
    try:
        segment_dataset(lambda: Predictor(model, settings, device), root, work,
                        progress=False)
        return evaluate(work, Path(root) / "Annotations", workers=1)["J&F-Mean"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
        model.train(was_training)
