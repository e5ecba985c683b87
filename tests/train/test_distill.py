import dataclasses

import torch

from lgdk.config import Config
from lgdk.models.checkpoint import load_matching_weights, save_checkpoint
from lgdk.models.network import build_model
from lgdk.train.distill import distill_part, frame_masks
from tests.conftest import tiny_config


def batch(seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.zeros(2, 3, 64, 64, dtype=torch.long)  # (B, T, H, W), 2 objects
    for b in range(2):
        for t in range(3):
            y, x = torch.randint(0, 30, (2,), generator=g).tolist()
            labels[b, t, y:y + 24, x:x + 20] = 1
            labels[b, t, 40:60, x + 10:x + 30] = 2
    return {"frames": torch.rand(2, 3, 3, 64, 64, generator=g), "labels": labels,
            "first_masks": torch.zeros(2, 2, 64, 64)}


def test_frame_masks_one_channel_per_object_and_softened_in_range():
    labels = batch(0)["labels"]
    masks = frame_masks(labels, 2, soften=False)
    assert masks.shape == (6, 2, 64, 64)
    assert torch.equal(masks[0, 1] > 0, labels[0, 0] == 2)
    soft = frame_masks(labels, 2, soften=True)
    assert 0 <= soft.min() and soft.max() <= 1 and ((soft > 0) & (soft < 1)).any()


def test_distilling_trains_only_the_students_memory_encoder_towards_the_teacher(tmp_path):
    cfg = Config(model=tiny_config(memory_encoder="light"))
    teacher = build_model(cfg.model)
    save_checkpoint(tmp_path / "t.safetensors", teacher, cfg)
    student = build_model(dataclasses.replace(cfg.model, memory_encoder="fast"))
    load_matching_weights(student, tmp_path / "t.safetensors")
    before = {k: v.clone() for k, v in student.state_dict().items()}
    batches = [batch(i % 4) for i in range(60)]
    losses = distill_part(teacher, student, batches, 60, "memory_encoder", lr=3e-3,
                          log_every=0)
    assert len(losses) == 60
    assert sum(losses[-10:]) / 10 < 0.5 * sum(losses[:10]) / 10
    for name, tensor in student.state_dict().items():
        changed = not torch.equal(tensor, before[name])
        assert changed == name.startswith("memory_encoder."), name
    assert all(p.requires_grad for p in student.parameters())  # handed back trainable


def test_distilling_the_decoder_entry_trains_only_the_students_aspp(tmp_path):
    """A reduced ASPP (aspp_reduce) learns the full one's outputs on its own inputs."""
    cfg = Config(model=tiny_config(memory_encoder="fast"))
    teacher = build_model(cfg.model)
    save_checkpoint(tmp_path / "t.safetensors", teacher, cfg)
    student = build_model(dataclasses.replace(cfg.model, aspp_reduce=8))
    fresh = load_matching_weights(student, tmp_path / "t.safetensors")
    assert fresh and all(name.startswith("decoder.entry.") for name in fresh)
    before = {k: v.clone() for k, v in student.state_dict().items()}
    batches = [{**batch(i % 4), "first_masks": (batch(i % 4)["labels"][:, 0, None] ==
                                                torch.arange(1, 3).view(1, 2, 1, 1)).float()}
               for i in range(40)]
    losses = distill_part(teacher, student, batches, 40, "decoder_entry", lr=3e-3,
                          log_every=0)
    assert sum(losses[-8:]) / 8 < 0.5 * sum(losses[:8]) / 8
    for name, tensor in student.state_dict().items():
        changed = not torch.equal(tensor, before[name])
        assert changed == name.startswith("decoder.entry."), name
