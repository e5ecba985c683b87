"""The arithmetic chosen when a model is loaded (`lgdk.infer.precision`)."""

import numpy as np
import pytest
import torch

from lgdk.config import ConfigError, InferenceConfig
from lgdk.data.procedural import generate_clip
from lgdk.errors import UserError
from lgdk.infer import precision
from lgdk.infer.loading import load_models
from lgdk.infer.predictor import Predictor
from lgdk.models.fused_activation import ConvActivation, fusion_available
from lgdk.models.int8 import int8_available


@pytest.mark.parametrize("bf16, products, expected", [  # products: AVX2 or VNNI
    (False, False, "float32"), (True, True, "bfloat16"), (False, True, "int8")])
def test_auto_follows_the_cpu_and_is_float32_with_adapt(monkeypatch, bf16, products, expected):
    monkeypatch.setattr(precision, "cpu_has_fast_bfloat16", lambda: bf16)
    monkeypatch.setattr(precision, "cpu_has_int8_products", lambda: products)
    auto = InferenceConfig(precision="auto")
    assert precision.resolve_precision(auto, "cpu") == expected
    assert precision.resolve_precision(auto, "cuda") == "float32"
    assert precision.resolve_precision(InferenceConfig(adapt_steps=5), "cpu") == "float32"


@pytest.mark.parametrize("name", ["float32", "bfloat16", "int8"])
def test_an_explicit_precision_is_kept_on_any_cpu(monkeypatch, name):
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: True)
    for fast in (False, True):
        monkeypatch.setattr(precision, "cpu_has_fast_bfloat16", lambda fast=fast: fast)
        assert precision.resolve_precision(InferenceConfig(precision=name), "cpu") == name


def test_int8_off_the_cpu_is_a_clear_error():
    with pytest.raises(UserError, match="--precision int8 runs on a CPU"):
        precision.resolve_precision(InferenceConfig(precision="int8"), "cuda")


def test_a_bad_precision_is_a_clear_error():
    with pytest.raises(ConfigError, match="--precision must be one of auto, float32"):
        InferenceConfig(precision="float16")
    for name in ("bfloat16", "int8"):
        with pytest.raises(ConfigError, match=f"--adapt fine-tunes in float32: leave out "
                                              f"--precision {name}"):
            InferenceConfig(precision=name, adapt_steps=3)


def test_bfloat16_where_the_cpu_has_no_bfloat16_convolutions_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: False)
    with pytest.raises(UserError, match="--precision bfloat16 needs a CPU with bfloat16"):
        precision.resolve_precision(InferenceConfig(precision="bfloat16"), "cpu")
    assert precision.resolve_precision(InferenceConfig(precision="float32"), "cpu") == \
        "float32"


@pytest.mark.parametrize("name", ["bfloat16", "int8"])
def test_the_shipped_model_in_a_lower_precision_gives_the_float32_masks(name):
    """Loaded with `precision`, the shipped model's parts run in it and its masks on a
    generated clip match float32's (a few border pixels may differ)."""
    if name == "bfloat16" and not precision.cpu_has_bfloat16():
        pytest.skip("this CPU has no bfloat16 convolutions (AVX2 only)")
    clip = generate_clip(np.random.default_rng(3), 128, 192, 5, 2)
    labels = {}
    for precision_ in ("float32", name):
        (model,), settings = load_models(None, "cpu", precision=precision_, size=128,
                                         object_cells=0)
        assert model.precision == precision_
        assert model.reader.int8 == (precision_ != "float32")  # the top k chosen in int8
        predictor = Predictor(model, settings)
        labels[precision_] = [predictor.labels(predictor.step(f, clip.labels[0] if t == 0
                                                              else None))
                              for t, f in enumerate(clip.frames)]
    if name == "bfloat16":
        assert next(model.query_encoder.parameters()).dtype == torch.bfloat16
    for a, b in zip(labels["float32"][1:], labels[name][1:]):
        assert (a == b).mean() > 0.98


@pytest.mark.skipif(not (fusion_available() and precision.cpu_has_bfloat16()),
                    reason="PyTorch without oneDNN, or a CPU without bfloat16 convolutions")
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


@pytest.mark.parametrize("precision_, given, device, expected", [
    ("float32", False, "cpu", 384),  # the slowest arithmetic: the smaller size
    ("bfloat16", False, "cpu", 480),
    ("int8", False, "cpu", 480),
    ("float32", True, "cpu", 480),  # a given --size always holds
    ("float32", False, "cuda", 480),
])
def test_float32_on_a_cpu_runs_at_its_own_size_unless_a_size_is_given(
        monkeypatch, precision_, given, device, expected):
    from lgdk.infer.loading import size_for_precision

    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: True)

    settings = InferenceConfig(size=480, cpu_float32_size=384, precision=precision_)
    if precision_ == "int8" and not int8_available():
        pytest.skip("PyTorch without oneDNN int8")
    if device == "cuda":
        settings = InferenceConfig(size=480, cpu_float32_size=384)
    assert size_for_precision(settings, device, size_given=given).size == expected
    assert size_for_precision(InferenceConfig(size=480, precision="float32"), "cpu").size == 480
