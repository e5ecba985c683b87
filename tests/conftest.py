"""Shared fixtures: tiny models and generated clips (tests never need ../shared)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lgdk.config import Config, ModelConfig
from lgdk.data.masks import write_mask
from lgdk.data.procedural import generate_clip
from lgdk.models.checkpoint import save_checkpoint
from lgdk.models.network import build_model

TINY = dict(pretrained=False, key_dim=16, value_dim=32, decoder_dim=32, kernel_hidden=32)


def tiny_config(**changes) -> ModelConfig:
    return ModelConfig(**{**TINY, **changes})


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def tiny_model():
    return build_model(tiny_config()).eval()


@pytest.fixture
def tiny_checkpoint(tmp_path):
    cfg = Config(model=tiny_config())
    path = tmp_path / "tiny.safetensors"
    save_checkpoint(path, build_model(cfg.model), cfg)
    return path


def write_clip(folder, num_frames=6, height=64, width=96, objects=2, seed=0):
    """A generated clip as frames/*.jpg + gt/*.png; returns the clip."""
    clip = generate_clip(np.random.default_rng(seed), height, width, num_frames, objects)
    (folder / "frames").mkdir(parents=True)
    (folder / "gt").mkdir()
    for i, (frame, label) in enumerate(zip(clip.frames, clip.labels)):
        Image.fromarray(frame).save(folder / "frames" / f"{i:05d}.png")
        write_mask(folder / "gt" / f"{i:05d}.png", label)
    return clip
