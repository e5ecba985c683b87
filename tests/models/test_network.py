import dataclasses

import pytest
import torch

from lgdk.config import Config
from lgdk.models.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_matching_weights,
    save_checkpoint,
)
from lgdk.models.network import aggregate, aggregate_log, build_model
from tests.conftest import tiny_config


def clip(b=1, t=3, n=2, h=64, w=96):
    frames = torch.rand(b, t, 3, h, w)
    masks = torch.zeros(b, n, h, w)
    masks[:, 0, 8:30, 10:40] = 1
    if n > 1:
        masks[:, 1, 35:60, 50:90] = 1
    return frames, masks


def test_clip_forward_shapes_and_probabilities_sum_to_one(tiny_model):
    frames, masks = clip()
    out = tiny_model(frames, masks)
    assert out.shape == (1, 2, 3, 64, 96)  # (B, T-1, 1+N, H, W)
    assert torch.allclose(out.exp().sum(dim=2), torch.ones(1, 2, 64, 96), atol=1e-5)


def test_soft_aggregation_sums_to_one_and_keeps_order():
    logits = torch.randn(2, 4, 5, 5) * 5
    probs = aggregate(logits)
    assert probs.shape == (2, 5, 5, 5)
    assert torch.allclose(probs.sum(dim=1), torch.ones(2, 5, 5), atol=1e-5)
    top = logits.argmax(dim=1)
    strong = logits.max(dim=1).values > 2
    assert torch.equal((probs[:, 1:].argmax(dim=1))[strong], top[strong])


def test_soft_aggregation_closed_form_equals_the_log_space_one():
    logits = torch.cat([torch.randn(2, 3, 6, 7) * 8, torch.full((2, 1, 6, 7), 40.0)], dim=1)
    assert torch.allclose(aggregate(logits), aggregate_log(logits).exp(), atol=1e-6)


def test_empty_mask_gives_no_nan(tiny_model):
    frames, masks = clip()
    masks[:, 1] = 0
    out = tiny_model(frames, masks)
    assert torch.isfinite(out).all()


ABLATIONS = {
    "static": dict(local_kernel=False, global_kernel=False, aspp=False),
    "local": dict(local_kernel=True, global_kernel=False, aspp=False),
    "global": dict(local_kernel=False, global_kernel=True, aspp=False),
    "both": dict(local_kernel=True, global_kernel=True, aspp=False),
    "both+aspp": dict(local_kernel=True, global_kernel=True, aspp=True),
}


def _param_names(model, prefix):
    return {n for n, _ in model.named_parameters() if n.startswith(prefix)}


def test_ablation_toggles_change_only_their_module():
    models = {k: build_model(tiny_config(**v)) for k, v in ABLATIONS.items()}
    rest = {k: {n for n, _ in m.named_parameters()
                if not n.startswith(("kernel_head", "decoder.entry"))} for k, m in models.items()}
    assert all(r == rest["static"] for r in rest.values())
    assert _param_names(models["static"], "kernel_head") == {"kernel_head.static.weight",
                                                             "kernel_head.static.bias"}
    assert models["both"].kernel_head.fc[0].in_features == 64
    assert models["local"].kernel_head.fc[0].in_features == 32
    assert _param_names(models["both"], "decoder.entry") == {"decoder.entry.weight",
                                                             "decoder.entry.bias"}
    assert any("branches" in n for n in _param_names(models["both+aspp"], "decoder.entry"))
    for m in models.values():
        out = m(*clip())
        assert out.shape == (1, 2, 3, 64, 96) and torch.isfinite(out).all()


def test_checkpoint_round_trip_rebuilds_the_same_model(tmp_path):
    cfg = Config(model=tiny_config(local_kernel=False))
    model = build_model(cfg.model).eval()
    save_checkpoint(tmp_path / "m.safetensors", model, cfg)
    loaded, loaded_cfg = load_checkpoint(tmp_path / "m.safetensors")
    assert loaded_cfg.model == cfg.model
    frames, masks = clip()
    with torch.no_grad():
        assert torch.equal(model(frames, masks), loaded.eval()(frames, masks))


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    cfg = Config(model=tiny_config())
    save_checkpoint(tmp_path / "m.safetensors", build_model(cfg.model), cfg)
    other = build_model(dataclasses.replace(cfg.model, value_dim=48))
    from lgdk.models.checkpoint import load_weights_into

    with pytest.raises(CheckpointError, match="another architecture"):
        load_weights_into(other, tmp_path / "m.safetensors")


def test_matching_weights_load_and_the_new_memory_encoder_starts_fresh(tmp_path):
    cfg = Config(model=tiny_config(memory_encoder="light"))
    trained = build_model(cfg.model)
    save_checkpoint(tmp_path / "m.safetensors", trained, cfg)
    fast = build_model(dataclasses.replace(cfg.model, memory_encoder="fast"))
    fresh = load_matching_weights(fast, tmp_path / "m.safetensors")
    assert fresh and all(name.startswith("memory_encoder.") for name in fresh)
    for name, tensor in fast.state_dict().items():
        if name not in fresh:
            assert torch.equal(tensor, trained.state_dict()[name]), name
    unrelated = torch.nn.Linear(3, 3)
    with pytest.raises(CheckpointError, match="shares no tensor"):
        load_matching_weights(unrelated, tmp_path / "m.safetensors")


def test_not_a_checkpoint_is_refused(tmp_path):
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not an lgdk checkpoint"):
        load_checkpoint(bad)


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["resnet50", "wide_resnet50_2", "resnest101e",
                                      "seresnet152d", "swin_base_patch4_window12_384"])
def test_whole_network_runs_with_each_paper_backbone(backbone):
    model = build_model(tiny_config(backbone=backbone, memory_encoder="full")).eval()
    with torch.no_grad():
        out = model(*clip())
    assert out.shape == (1, 2, 3, 64, 96) and torch.isfinite(out).all()


def test_padding_objects_with_empty_masks_change_nothing(tiny_model):
    """Training pads clips to max_objects with empty masks: they must not take part."""
    frames, masks = clip(n=1)
    padded = torch.cat([masks, torch.zeros_like(masks)], dim=1)
    with torch.no_grad():
        alone = tiny_model(frames, masks)
        with_pad = tiny_model(frames, padded)
    assert torch.allclose(alone, with_pad[:, :, :2], atol=1e-4)
    assert (with_pad[:, :, 2].exp() < 1e-6).all()


def test_the_clip_forward_under_bfloat16_autocast_gives_float32_log_probabilities():
    """Under autocast (GPU training's `train.amp`; here the CPU's) the memory read and the
    soft aggregation run in float32: log-probabilities in float32, finite, near the
    float32 forward's. The kernels' bias is raised so that the model is sure of every
    object everywhere: in bfloat16, sigmoid(logit) would round to 1 and the odds'
    logarithm be infinite."""
    import numpy as np

    from lgdk.data.procedural import generate_clip

    clip = generate_clip(np.random.default_rng(0), 64, 96, 3, 2)
    frames = torch.stack([torch.from_numpy(f).permute(2, 0, 1).float() / 255
                          for f in clip.frames])[None]
    masks = torch.stack([torch.from_numpy(clip.labels[0] == i).float() for i in (1, 2)])[None]
    model = build_model(tiny_config()).eval()
    with torch.no_grad():
        model.kernel_head.fc[-1].bias[-1] += 12.0  # every logit about 12: p = 1 - 6e-6
        exact = model(frames, masks)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = model(frames, masks)
    assert mixed.dtype == torch.float32 and torch.isfinite(mixed).all()
    assert (mixed.exp() - exact.exp()).abs().max() < 0.1


def test_each_object_sees_the_largest_readout_of_the_others_and_zero_alone():
    from lgdk.models.decoder import others_maximum

    readout = torch.randn(2, 3, 5, 4, 6)  # (B, N, C, h, w)
    others = others_maximum(readout)
    for i in range(3):
        rest = [j for j in range(3) if j != i]
        assert torch.equal(others[:, i], readout[:, rest].amax(dim=1))
    present = torch.tensor([[True, True, False], [True, False, False]])
    others = others_maximum(readout, present)
    assert torch.equal(others[0, 0], readout[0, 1]) and torch.equal(others[0, 1], readout[0, 0])
    assert torch.equal(others[1, 0], torch.zeros(5, 4, 6))  # no other object is there
    assert torch.equal(others_maximum(readout[:, :1]), torch.zeros(2, 1, 5, 4, 6))


def test_the_other_objects_readouts_start_at_zero_and_then_change_the_masks(tmp_path):
    """A model given the other objects' readouts and the matching weights of one without
    them computes the same masks until its new convolution is trained."""
    cfg = Config(model=tiny_config())
    without = build_model(cfg.model).eval()
    save_checkpoint(tmp_path / "m.safetensors", without, cfg)
    model = build_model(dataclasses.replace(cfg.model, others_readout=True)).eval()
    assert load_matching_weights(model, tmp_path / "m.safetensors") == [
        "decoder.others.bias", "decoder.others.weight"]
    frames, masks = clip()
    with torch.no_grad():
        assert torch.equal(model(frames, masks), without(frames, masks))
        torch.nn.init.normal_(model.decoder.others.weight, std=0.1)
        assert not torch.allclose(model(frames, masks), without(frames, masks), atol=1e-4)
        one = masks[:, :1]  # a single object has no others: nothing changes
        assert torch.equal(model(frames, one), without(frames, one))
