import pytest
import torch
from timm.layers.conv2d_same import Conv2dSame
from torch import nn

from lgdk.models.backbones import Backbone
from lgdk.models.same_padding import (
    StaticSameConv2d,
    replace_dynamic_same_padding,
    same_padding,
)


def test_same_padding_matches_tensorflow_rule():
    assert same_padding(8, 3, 2) == (0, 1)  # even input: one more at the end
    assert same_padding(9, 3, 2) == (1, 1)
    assert same_padding(8, 5, 2) == (1, 2)
    assert same_padding(7, 5, 2) == (2, 2)
    assert same_padding(8, 1, 2) == (0, 0)


@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("size", [(16, 24), (17, 24), (16, 25), (15, 9)])
@pytest.mark.parametrize("groups", [1, 8])
def test_static_conv_equals_dynamic_padding(kernel, size, groups):
    torch.manual_seed(0)
    conv = Conv2dSame(8, 16, kernel, stride=2, groups=groups).eval()
    x = torch.randn(2, 8, *size)
    expected = conv(x)
    got = StaticSameConv2d(conv)(x)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-5)


def test_replace_swaps_every_strided_same_conv_and_keeps_features():
    backbone = Backbone("tf_efficientnet_lite0").eval()
    before_count = sum(isinstance(m, Conv2dSame) for m in backbone.modules())
    assert before_count == 4  # the stem and three stage openings at stride 2
    x = torch.rand(1, 3, 96, 112)
    with torch.no_grad():
        before = backbone(x)
        assert backbone.optimize_for_inference() > before_count  # BatchNorms folded too
        after = backbone(x)
    assert not any(isinstance(m, Conv2dSame) for m in backbone.modules())
    assert sum(isinstance(m, StaticSameConv2d) for m in backbone.modules()) == before_count
    for a, b in zip(before, after):
        assert a.shape == b.shape
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)


def test_a_model_without_same_convs_is_left_alone():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1))
    assert replace_dynamic_same_padding(net) == 0
    assert isinstance(net[0], nn.Conv2d)
