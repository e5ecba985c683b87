"""int8 convolutions and the int8-chosen memory read (`lgdk.models.int8`,
`lgdk.models.memory_int8`)."""

import copy

import pytest
import torch
from torch import nn

from lgdk.models import int8
from lgdk.models.fused_activation import fuse_conv_activations
from lgdk.models.int8 import Int8Conv2d, convert_to_int8, int8_available, revert_int8
from lgdk.models.memory import read_memory, top_affinity
from lgdk.models.memory_int8 import exact_affinities
from lgdk.models.network import build_model
from lgdk.models.same_padding import StaticSameConv2d
from tests.conftest import tiny_config

pytestmark = pytest.mark.skipif(not int8_available(), reason="PyTorch without oneDNN int8")


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("conv", [
    nn.Conv2d(16, 24, 3, padding=1),
    nn.Conv2d(16, 8, 3, padding=4, dilation=4),
    nn.Conv2d(16, 32, 1),
    nn.Conv2d(16, 16, 3, padding=1, stride=2, groups=16),
    nn.Conv2d(16, 8, 3, padding=1, bias=False),
])
@pytest.mark.parametrize("channels_last", [False, True])
def test_an_int8_convolution_gives_the_float_result_within_a_few_percent(conv, channels_last):
    x = torch.randn(2, 16, 23, 30) * 3 + 1  # not centred: the zero point matters
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        expected = conv(x)
        got = Int8Conv2d(conv.eval())(x)
    assert got.shape == expected.shape and got.dtype == torch.float32
    assert _relative_error(got, expected) < 0.03


@pytest.mark.parametrize("size", [(31, 40), (32, 41)])  # "same" padding odd and even
def test_fused_activations_and_same_padding_survive_the_conversion(size):
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU6(),
        StaticSameConv2d(nn.Conv2d(8, 8, 3, stride=2)), nn.ReLU(),
        nn.Conv2d(8, 4, 1),
    ).eval()
    fuse_conv_activations(net)
    quantized = copy.deepcopy(net)
    assert convert_to_int8(quantized) == 3
    x = torch.randn(1, 3, *size) * 2
    with torch.inference_mode():
        expected, got = net(x), quantized(x)
        first = quantized[0](x)
    assert first.min() >= 0 and first.max() <= 6  # the ReLU6 is applied inside
    assert _relative_error(got, expected) < 0.05


def test_revert_and_deep_copy_give_back_the_float_modules():
    net = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 2, 1)).eval()
    x = torch.randn(1, 4, 9, 11)
    convert_to_int8(net)
    twin = copy.deepcopy(net)  # oneDNN's packed weights are made again, not copied
    assert all(isinstance(m, Int8Conv2d) for m in twin)
    with torch.inference_mode():
        assert torch.equal(twin(x), net(x))
    assert revert_int8(net) == 2
    assert [type(m) for m in net] == [nn.Conv2d, nn.Conv2d]


def test_without_vnni_activations_keep_seven_bits(monkeypatch):
    """AVX2's 8-bit products are summed in pairs in 16 bits: 7-bit activations cannot
    overflow them."""
    monkeypatch.setattr(int8, "cpu_has_vnni", lambda: False)
    assert int8.activation_max() == 127
    q, scale, zero = int8.quantize_input(torch.linspace(-1, 3, 50), int8.activation_max())
    assert int(q.max()) <= 127 and q.dtype == torch.uint8
    monkeypatch.setattr(int8, "cpu_has_vnni", lambda: True)
    assert int8.activation_max() == 255


def _spread_memory(positions: int = 300, ck: int = 16, frames: int = 3):
    """Each query position near one memory position, the others far and spread, as
    real features are (on a dev-val video at 480 the top-1 and the 20th affinity lie
    about 60 apart; random keys of equal norm would all be near-ties)."""
    g = torch.Generator().manual_seed(0)
    memory = 4 * torch.randn(ck, frames * positions, generator=g)
    near = torch.randint(0, frames * positions, (positions,), generator=g)
    query = memory[:, near] + 0.5 * torch.randn(ck, positions, generator=g)
    h, w = 15, 20
    return (query.view(1, ck, h, w), memory.view(1, ck, frames, h, w),
            torch.randn(1, 2, 8, frames, h, w, generator=g))


@pytest.mark.parametrize("kind", ["l2", "dot"])
def test_the_int8_read_matches_the_float_read(kind):
    query, keys, values = _spread_memory()
    expected = read_memory(query, keys, values, kind, top_k=10, sparse=True)
    got = read_memory(query, keys, values, kind, top_k=10, sparse=True, int8=True)
    assert got.shape == expected.shape
    assert _relative_error(got, expected) < 0.02


def test_the_chosen_affinities_are_recomputed_in_float32():
    query, keys, _ = _spread_memory()
    q, m = query.flatten(2), keys.flatten(2)
    values, index = top_affinity(q, m, "l2", 10)
    rows = m[0].t().contiguous()
    term = rows.pow(2).sum(dim=1) * -(16 ** -0.5)
    got = exact_affinities(q[0].t() * 2 * 16 ** -0.5, rows, term, index)
    assert torch.allclose(got, values, atol=1e-4)


def test_a_model_in_int8_converts_its_decoder_and_memory_encoder_and_exports_in_float():
    model = build_model(tiny_config(), top_k=4, sparse_read=True).eval()
    model.optimize_for_inference()
    model.use_int8()
    assert model.precision == "int8" and not model.reader.int8  # the read: use_int8_read
    assert model.use_int8_read().reader.int8
    assert any(isinstance(m, Int8Conv2d) for m in model.decoder.modules())
    assert any(isinstance(m, Int8Conv2d) for m in model.memory_encoder.modules())
    assert not any(isinstance(m, Int8Conv2d) for m in model.query_encoder.backbone.modules())
    copy_ = model.exportable()
    assert not any(isinstance(m, Int8Conv2d) for m in copy_.modules())
    assert any(isinstance(m, Int8Conv2d) for m in model.modules())  # left as it was


def test_a_reader_packs_the_same_keys_once_and_new_keys_again(monkeypatch):
    from lgdk.models import memory_int8

    query, keys, values = _spread_memory()
    packs, made = memory_int8.KeyPacks(), []
    real = memory_int8.pack_keys
    monkeypatch.setattr(memory_int8, "pack_keys", lambda *a: made.append(1) or real(*a))
    expected = read_memory(query, keys, values, "l2", top_k=10, sparse=True, int8=True)
    for _ in range(2):
        got = read_memory(query, keys, values, "l2", top_k=10, sparse=True, int8=True,
                          packs=packs)
        assert torch.equal(got, expected)
    assert len(made) == 1 + 1  # once without packs, once for the two calls with them
    read_memory(query, keys.clone(), values, "l2", top_k=10, sparse=True, int8=True,
                packs=packs)
    assert len(made) == 3  # other keys (a new tensor): packed again
