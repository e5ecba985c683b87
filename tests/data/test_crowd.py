"""Real crowd clips for training (`lgdk.data.crowd`), on a small generated crowd in the
layout MOTSChallenge is prepared in: touching groups, void kept, other people background,
only the training sequences read, and a loss that ignores void."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lgdk.config import DataConfig
from lgdk.data.clips import ClipDataset
from lgdk.data.crowd import CrowdSource, touching_group
from lgdk.data.layouts import DataError
from lgdk.data.masks import VOID, write_mask
from lgdk.models.loss import batch_iou, bootstrapped_ce, soft_dice

# five people: 1, 2, 3 stand side by side, 4 and 5 far off; a void strip
PEOPLE = {1: (20, 80, 10, 30), 2: (20, 80, 32, 52), 3: (22, 82, 54, 74), 4: (20, 80, 150, 170),
          5: (10, 40, 200, 215)}


def crowd_frame(shift: int = 0) -> np.ndarray:
    ids = np.zeros((96, 224), np.uint8)
    for i, (y0, y1, x0, x1) in PEOPLE.items():
        ids[y0:y1, x0 + shift:x1 + shift] = i
    ids[85:95, :] = VOID
    return ids


def write_crowd(root, seq, frames=6):
    rng = np.random.default_rng(0)
    for t in range(frames):
        for kind in ("JPEGImages", "Annotations"):
            (root / kind / "480p" / seq).mkdir(parents=True, exist_ok=True)
        image = rng.integers(0, 255, (96, 224, 3), dtype=np.uint8)
        Image.fromarray(image).save(root / "JPEGImages" / "480p" / seq / f"{t:05d}.jpg")
        write_mask(root / "Annotations" / "480p" / seq / f"{t:05d}.png", crowd_frame(t))


def test_a_group_grows_only_through_people_who_touch():
    rng = np.random.default_rng(1)
    for _ in range(30):
        group = touching_group(rng, crowd_frame(), 2, 6)
        if group[0] in (1, 2, 3):
            assert set(group) <= {1, 2, 3} and len(group) >= 2
        else:
            assert len(group) == 1  # 4 and 5 touch nobody


def test_a_clip_keeps_void_makes_the_group_its_objects_and_reads_only_training_sequences(
        tmp_path):
    write_crowd(tmp_path, "mots-0002")
    write_crowd(tmp_path, "held-out")
    cfg = DataConfig(procedural_weight=0, crowd_weight=1, crowd_roots=(str(tmp_path),),
                     crop=64, crop_scale=(1.0, 1.0), max_objects=3)
    source = CrowdSource(cfg)
    assert len(source.videos) == 1 and "mots-0002" in str(source.videos[0][0][0])
    frames, labels = source.sample(np.random.default_rng(3), 2)
    assert frames.shape == (3, 3, 64, 64) and labels.shape == (3, 64, 64)
    assert (labels == VOID).any()  # the void strip survives the crop
    item = ClipDataset(cfg, 4, seed=0)[0]
    ids = set(item["labels"].unique().tolist())
    assert VOID in ids and ids - {0, VOID} <= {1, 2, 3}
    assert item["first_masks"].shape == (3, 64, 64)


def test_no_training_sequence_is_a_clear_error(tmp_path):
    write_crowd(tmp_path, "held-out")
    cfg = DataConfig(crowd_weight=1, crowd_roots=(str(tmp_path),))
    with pytest.raises(DataError, match="prepare MOTSChallenge"):
        CrowdSource(cfg)


def test_void_pixels_cost_nothing_and_count_in_no_score():
    log_probs = torch.log_softmax(torch.randn(1, 2, 8, 8, requires_grad=True), dim=1)
    labels = torch.zeros(1, 8, 8, dtype=torch.long)
    labels[:, :4] = VOID
    labels[:, 5:, :4] = 1
    ce = bootstrapped_ce(log_probs, labels, 1.0)
    grad = torch.autograd.grad(ce + soft_dice(log_probs, labels, torch.tensor([1])),
                               log_probs)[0]
    assert grad[:, :, :4].abs().max() == 0
    perfect = torch.log(torch.stack([(labels != 1).float(), (labels == 1).float()], 1)
                        .clamp(1e-6, 1))
    assert batch_iou(perfect[:, None].expand(1, 1, 2, 8, 8),
                     torch.stack([labels, labels], 1)) == 1.0
