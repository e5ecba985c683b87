"""The contract every registered memory encoder and decoder variant keeps (after timm's
test_models.py):
gradients everywhere and no NaN, the documented shapes, the streaming predictor and the
whole-clip forward giving the same numbers, inference rewrites changing nothing, and ONNX
export where the encoder supports it (the rest refused with a clear error)."""

import numpy as np
import pytest
import torch

from lgdk.config import InferenceConfig
from lgdk.data.procedural import generate_clip
from lgdk.errors import UserError
from lgdk.infer.backend import StepModel
from lgdk.infer.predictor import Predictor
from lgdk.models.encoders import MEMORY_ENCODERS
from lgdk.models.memory_bank import MemoryPolicy
from lgdk.models.network import build_model
from tests.conftest import tiny_config

# every memory encoder, and on the shipped model's encoder the reduced ASPP
# (`aspp_reduce`) and the other objects' readouts in the decoder (`others_readout`)
VARIANTS = [{"memory_encoder": name} for name in sorted(MEMORY_ENCODERS)] + [
    {"memory_encoder": "fast", "aspp_reduce": 16},
    {"memory_encoder": "fast", "others_readout": True}]
IDS = ["-".join(f"{k}={v}" for k, v in variant.items()) for variant in VARIANTS]


def built(variant, **build):
    """The variant's model; a new part that starts at zero (`others_readout`'s convolution)
    gets random weights, so that the contract covers what it computes."""
    model = build_model(tiny_config(**variant), **build)
    others = getattr(model.decoder, "others", None)
    if others is not None:
        torch.nn.init.normal_(others.weight, std=0.05)
        torch.nn.init.normal_(others.bias, std=0.05)
    return model


def tensors(clip):
    frames = torch.stack([torch.from_numpy(f).permute(2, 0, 1).float() / 255
                          for f in clip.frames])[None]  # (1, T, 3, H, W)
    masks = torch.stack([torch.from_numpy(clip.labels[0] == i).float() for i in (1, 2)])
    return frames, masks[None]  # (1, N, H, W)


def make_clip(frames=6, seed=0):
    return generate_clip(np.random.default_rng(seed), 64, 96, frames, 2)


@pytest.mark.parametrize("variant", VARIANTS, ids=IDS)
def test_every_parameter_gets_a_gradient_and_no_nan(variant):
    model = built(variant, top_k=4).train()
    frames, masks = tensors(make_clip(frames=3))
    out = model(frames.expand(2, -1, -1, -1, -1), masks.expand(2, -1, -1, -1))
    assert out.shape == (2, 2, 3, 64, 96)  # (B, T-1, 1+N, H, W)
    (-out[:, :, 1].mean()).backward()
    assert not [n for n, p in model.named_parameters() if p.grad is None]
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("variant", VARIANTS, ids=IDS)
def test_streaming_equals_the_whole_clip_forward(variant):
    """Same memory policy (a memory frame every 2nd frame, every frame encoded), a top-k
    read (the sparse form while streaming, the gather form in the forward)."""
    clip = make_clip()
    settings = InferenceConfig(size=0, top_k=4, mem_every=2, encode_every=1, max_memory=0)
    trained = built(variant, top_k=4).eval()
    inference = built(variant, top_k=4, sparse_read=True)
    inference.load_state_dict(trained.state_dict())
    assert isinstance(inference, StepModel)
    with torch.no_grad():
        whole = trained(*tensors(clip), policy=MemoryPolicy(2, 1)).exp()[0]  # (T-1, 1+N, H, W)
    predictor = Predictor(inference.eval(), settings)
    streamed = [predictor.step(f, clip.labels[0] if t == 0 else None)
                for t, f in enumerate(clip.frames)]
    assert [e.frame_index for e in predictor.bank.entries] == [0, 2, 4]
    for t in range(1, len(clip.frames)):
        assert torch.allclose(streamed[t], whole[t - 1], atol=1e-5), t


@pytest.mark.parametrize("variant", VARIANTS, ids=IDS)
def test_inference_rewrites_change_nothing(variant):
    model = built(variant).eval()
    for m in model.modules():  # BatchNorm statistics that are not the identity
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    frames, masks = tensors(make_clip(frames=3))
    with torch.no_grad():
        before = model(frames, masks)
        assert model.optimize_for_inference() > 0
        after = model(frames, masks)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert torch.allclose(after, before, atol=1e-4)


@pytest.mark.parametrize("variant", VARIANTS, ids=IDS)
def test_export_where_supported(variant, tmp_path):
    pytest.importorskip("onnxscript")
    from lgdk.onnx.export import export_onnx

    model = built(variant, top_k=4).eval()
    if model.memory_encoder.reads_frame:
        with pytest.raises(UserError, match="reads the frame"):
            export_onnx(model, tmp_path / "m.onnx", 64, 96, InferenceConfig(size=0))
        return
    pytest.importorskip("onnxruntime")
    from lgdk.onnx.runtime import OnnxModel

    export_onnx(model, tmp_path / "m.onnx", 64, 96, InferenceConfig(size=0, top_k=4))
    graph = OnnxModel(tmp_path / "m.onnx")
    assert isinstance(graph, StepModel) and graph.settings.top_k == 4
    clip = make_clip(frames=3)
    outputs = []
    for backend in (model, graph):
        predictor = Predictor(backend, graph.settings)
        outputs.append([predictor.step(f, clip.labels[0] if t == 0 else None)
                        for t, f in enumerate(clip.frames)])
    for a, b in zip(*outputs):
        assert torch.allclose(a, b, atol=1e-4)


def _float32_and_changed(variant, change):
    """The float32 model and a copy made ready for inference and changed by `change`."""
    exact = built(variant, top_k=4, sparse_read=True).eval()
    changed = built(variant, top_k=4, sparse_read=True).eval()
    changed.load_state_dict(exact.state_dict())
    changed.optimize_for_inference()
    change(changed)
    return exact, changed


def _close_probabilities(exact, changed) -> None:
    """Both models on a generated clip: float32 memories, close probabilities."""
    clip = make_clip(frames=4)
    settings = InferenceConfig(size=0, top_k=4, mem_every=2)
    runs = []
    for model in (exact, changed):
        predictor = Predictor(model, settings)
        runs.append([predictor.step(f, clip.labels[0] if t == 0 else None)
                     for t, f in enumerate(clip.frames)])
        for entry in predictor.bank.entries:
            assert entry.key.dtype == torch.float32 and entry.value.dtype == torch.float32
    for a, b in zip(*runs):
        assert b.dtype == torch.float32 and torch.isfinite(b).all()
        assert (a - b).abs().max() < 0.1


@pytest.mark.parametrize("variant", VARIANTS, ids=IDS)
def test_bfloat16_parts_keep_a_float32_memory_and_close_probabilities(variant):
    """`use_dtype(bfloat16)`: the convolutional parts in bfloat16, the memory, its read and
    the probabilities in float32, and the probabilities near the float32 model's."""
    from lgdk.infer.precision import cpu_has_bfloat16

    if not cpu_has_bfloat16():
        pytest.skip("this CPU has no bfloat16 convolutions (AVX2 only)")
    exact, half = _float32_and_changed(variant, lambda m: m.use_dtype(torch.bfloat16))
    assert half.decoder.parameters().__next__().dtype == torch.bfloat16
    _close_probabilities(exact, half)


@pytest.mark.parametrize("variant", VARIANTS, ids=IDS)
def test_int8_parts_give_close_probabilities(variant):
    """`use_int8`: the decoder's and memory encoder's convolutions (not the full memory
    encoder's backbone) and the int8-chosen read give probabilities near the float32
    model's."""
    from lgdk.models.int8 import Int8Conv2d, int8_available

    if not int8_available():
        pytest.skip("PyTorch without oneDNN int8")
    exact, quantized = _float32_and_changed(variant, lambda m: m.use_int8().use_int8_read())
    assert any(isinstance(m, Int8Conv2d) for m in quantized.memory_encoder.modules())
    backbone = getattr(quantized.memory_encoder, "backbone", torch.nn.Identity())
    assert not any(isinstance(m, Int8Conv2d) for m in backbone.modules())
    _close_probabilities(exact, quantized)
