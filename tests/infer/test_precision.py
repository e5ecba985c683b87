"""The arithmetic chosen when a model is loaded (`lgdk.infer.precision`)."""

import numpy as np
import pytest
import torch

from lgdk.config import ConfigError, InferenceConfig
from lgdk.data.procedural import generate_clip
from lgdk.infer import precision
from lgdk.infer.loading import load_models
from lgdk.infer.predictor import Predictor
from lgdk.models.fused_activation import ConvActivation, fusion_available


@pytest.mark.parametrize("amx", [False, True])
def test_auto_is_bfloat16_only_on_a_cpu_with_amx_and_without_adapt(monkeypatch, amx):
    monkeypatch.setattr(precision, "cpu_has_amx", lambda: amx)
    auto = InferenceConfig(precision="auto")
    expected = torch.bfloat16 if amx else torch.float32
    assert precision.resolve_dtype(auto, "cpu") == expected
    assert precision.resolve_dtype(auto, "cuda") == torch.float32
    assert precision.resolve_dtype(InferenceConfig(adapt_steps=5), "cpu") == torch.float32


@pytest.mark.parametrize("name", ["float32", "bfloat16"])
def test_an_explicit_precision_is_kept_on_any_cpu(monkeypatch, name):
    for amx in (False, True):
        monkeypatch.setattr(precision, "cpu_has_amx", lambda amx=amx: amx)
        assert precision.resolve_dtype(InferenceConfig(precision=name), "cpu") == \
            precision.DTYPES[name]


def test_a_bad_precision_is_a_clear_error():
    with pytest.raises(ConfigError, match="--precision must be one of auto, float32"):
        InferenceConfig(precision="float16")
    with pytest.raises(ConfigError, match="--adapt fine-tunes in float32"):
        InferenceConfig(precision="bfloat16", adapt_steps=3)


def test_the_shipped_model_in_bfloat16_gives_the_float32_masks():
    """Loaded with `precision`, the shipped model's parts are in that dtype and its masks
    on a generated clip match float32's (bfloat16 keeps 8 bits of mantissa: a few border
    pixels may differ)."""
    clip = generate_clip(np.random.default_rng(3), 128, 192, 5, 2)
    labels = {}
    for name in ("float32", "bfloat16"):
        (model,), settings = load_models(None, "cpu", precision=name, size=128,
                                         object_cells=0)
        assert model.compute_dtype == precision.DTYPES[name]
        assert next(model.query_encoder.parameters()).dtype == precision.DTYPES[name]
        predictor = Predictor(model, settings)
        labels[name] = [predictor.labels(predictor.step(f, clip.labels[0] if t == 0 else
                                                        None))
                        for t, f in enumerate(clip.frames)]
    for a, b in zip(labels["float32"][1:], labels["bfloat16"][1:]):
        assert (a == b).mean() > 0.98


@pytest.mark.skipif(not fusion_available(), reason="PyTorch without oneDNN")
def test_fused_convolutions_run_in_bfloat16():
    conv = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8).to(torch.bfloat16)
    act = torch.nn.ReLU6()
    x = torch.randn(1, 8, 20, 24, dtype=torch.bfloat16) * 4
    with torch.inference_mode():
        fused = ConvActivation(conv, act)(x)
        plain = act(conv(x))
    assert fused.dtype == torch.bfloat16
    assert torch.allclose(fused.float(), plain.float(), atol=0.05)


def test_the_exportable_copy_of_a_bfloat16_model_is_float32():
    from lgdk.models.network import build_model
    from tests.conftest import tiny_config

    model = build_model(tiny_config()).eval().use_dtype(torch.bfloat16)
    copy = model.exportable()
    assert copy.compute_dtype == torch.float32
    assert {p.dtype for p in copy.parameters()} == {torch.float32}
    assert model.compute_dtype == torch.bfloat16  # the original is left as it was
