"""Convolutions split into a per-frame and a per-object part (`lgdk.models.split_input`):
the same numbers as the convolution they replace, in the layer and in the whole model,
on the whole frame and on crops, and still convertible to int8."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from lgdk.models.int8 import convert_to_int8, int8_available
from lgdk.models.memory_bank import MemoryBank
from lgdk.models.network import build_model
from lgdk.models.split_input import SplitInputConv
from tests.conftest import tiny_config


@pytest.mark.parametrize("shared_first", [True, False])
@pytest.mark.parametrize("kernel, dilation", [(1, 1), (3, 1), (3, 4)])
def test_the_two_parts_sum_to_the_convolution(shared_first, kernel, dilation):
    conv = nn.Conv2d(12, 8, kernel, padding=dilation * (kernel // 2), dilation=dilation)
    split = SplitInputConv(conv, 5, shared_first)
    x = torch.randn(6, 12, 9, 11)  # 2 frames x 3 objects
    with torch.no_grad():
        expected = conv(x)
        assert torch.allclose(split(x), expected, atol=1e-5)
        frame, objects = (x[::3, :5], x[:, 5:]) if shared_first else (x[::3, 5:], x[:, :5])
        if shared_first:  # the frame's part is the same for its 3 objects
            x[:, :5] = x[::3, :5].repeat_interleave(3, dim=0)
        else:
            x[:, 5:] = x[::3, 5:].repeat_interleave(3, dim=0)
        expected = conv(x)
        assert torch.allclose(split.with_shared(objects, split.shared(frame)), expected,
                              atol=1e-5)


def test_a_split_needs_channels_on_both_sides():
    with pytest.raises(ValueError, match="split"):
        SplitInputConv(nn.Conv2d(4, 4, 1), 4, True)


def _model_and_bank(**changes):
    model = build_model(tiny_config(**changes)).eval()
    frame = torch.rand(1, 3, 128, 192)
    masks = torch.zeros(1, 3, 128, 192)
    masks[:, 0, 20:50, 30:70] = 1
    masks[:, 1, 70:110, 120:180] = 1
    masks[:, 2, 10:120, 100:110] = 1
    bank = MemoryBank()
    bank.add_objects(3, 0)
    with torch.inference_mode():
        model.memorize(0, frame, model.encode_query(frame), masks, bank, True, True)
    return model, bank, torch.rand(1, 3, 128, 192), masks


@pytest.mark.parametrize("encoder", ["fast", "light"])
@torch.inference_mode()
def test_an_optimised_model_decodes_and_encodes_as_before(encoder):
    model, bank, frame, masks = _model_and_bank(memory_encoder=encoder)
    optimised = copy.deepcopy(model)
    optimised.optimize_for_inference()
    assert optimised.decoder.entry.is_split
    assert isinstance(optimised.memory_encoder.fuse, SplitInputConv) == (encoder == "fast")
    for crops in (None, [(0, 8, 0, 12), None, (0, 8, 0, 12)]):  # crops of the whole frame
        before, query = model.step(frame, bank, crops=crops)
        after, _ = optimised.step(frame, bank, crops=crops)
        assert torch.allclose(before, after, atol=1e-4)
    # a crop's border sees zeros beyond it, or the frame's part of the real neighbours
    crops = [(1, 7, 2, 10), None, None]
    before, _ = model.step(frame, bank, crops=crops)
    after, _ = optimised.step(frame, bank, crops=crops)
    inside = (slice(None), 0, slice(48, 80), slice(80, 128))
    assert (before[inside] - after[inside]).abs().max() < 0.05
    assert torch.allclose(before[:, 1:], after[:, 1:], atol=1e-4)
    values = [m.encode_memory(frame, query, masks)[0] for m in (model, optimised)]
    assert torch.allclose(*values, atol=1e-4)


@pytest.mark.skipif(not int8_available(), reason="PyTorch without oneDNN int8")
@torch.inference_mode()
def test_the_split_parts_run_in_int8_near_the_float_result():
    model, bank, frame, _ = _model_and_bank()
    model.optimize_for_inference()
    before, _ = model.step(frame, bank)
    converted = convert_to_int8(model.decoder)
    assert converted >= 2 * len(model.decoder.entry.branches)  # both parts of each branch
    after, _ = model.step(frame, bank)
    assert ((before > 0) == (after > 0)).float().mean() > 0.97


@torch.inference_mode()
def test_a_reduced_aspp_splits_its_reduction_with_the_same_numbers():
    model, bank, frame, _ = _model_and_bank(aspp_reduce=16)
    optimised = copy.deepcopy(model)
    optimised.optimize_for_inference()
    assert isinstance(optimised.decoder.entry.reduce, SplitInputConv)
    before, _ = model.step(frame, bank)
    after, _ = optimised.step(frame, bank)
    assert torch.allclose(before, after, atol=1e-4)
