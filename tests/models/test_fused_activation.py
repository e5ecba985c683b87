import copy

import pytest
import torch
from torch import nn

from lgdk.models.backbones import Backbone
from lgdk.models.fused_activation import (
    ConvActivation,
    fuse_conv_activations,
    fusion_available,
    unfuse_conv_activations,
)
from lgdk.models.network import build_model
from lgdk.models.same_padding import StaticSameConv2d
from tests.conftest import tiny_config

pytestmark = pytest.mark.skipif(not fusion_available(), reason="PyTorch without oneDNN")


def _net() -> nn.Module:
    same = StaticSameConv2d(nn.Conv2d(8, 8, 3, stride=2, groups=8))
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.Sequential(nn.Identity(), nn.ReLU6()),
        same, nn.ReLU(inplace=True),
        nn.Conv2d(8, 4, 1), nn.Identity(),  # no activation after it: left alone
        nn.Conv2d(4, 4, 3, padding=2, dilation=2), nn.Hardtanh(-1.0, 2.0),
    ).eval()


@pytest.mark.parametrize("size", [(31, 40), (32, 41)])  # "same" padding odd and even
@pytest.mark.parametrize("channels_last", [False, True])
def test_fused_convolutions_compute_the_same_numbers(size, channels_last):
    net = _net()
    fused = copy.deepcopy(net)
    assert fuse_conv_activations(fused) == 3
    x = torch.randn(2, 3, *size) * 4
    if channels_last:
        x, fused = x.contiguous(memory_format=torch.channels_last), fused.to(
            memory_format=torch.channels_last)
    with torch.inference_mode():
        assert torch.allclose(fused(x), net(x), atol=1e-5)
    assert sum(isinstance(m, ConvActivation) for m in fused.modules()) == 3


def test_unfusing_restores_plain_operators_with_the_same_numbers():
    net, x = _net(), torch.randn(1, 3, 20, 24)
    fuse_conv_activations(net)
    with torch.inference_mode():
        fused = net(x)
        assert unfuse_conv_activations(net) == 3
        assert not any(isinstance(m, ConvActivation) for m in net.modules())
        assert torch.allclose(net(x), fused, atol=1e-6)


def test_the_lite0_backbone_fuses_its_relu6_after_folding():
    backbone = Backbone("tf_efficientnet_lite0").eval()
    x = torch.rand(1, 3, 64, 96)
    with torch.inference_mode():
        before = backbone(x)
        backbone.optimize_for_inference()
        assert fuse_conv_activations(backbone) >= 20
        after = backbone(x)
    for a, b in zip(before, after):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)
    inside = {id(m) for layer in backbone.modules() if isinstance(layer, ConvActivation)
              for m in layer.act.modules()}
    assert not any(isinstance(m, nn.ReLU6) and id(m) not in inside for m in backbone.modules())


def test_an_optimized_model_fuses_and_its_exportable_copy_does_not():
    model = build_model(tiny_config()).eval()
    model.optimize_for_inference()
    assert any(isinstance(m, ConvActivation) for m in model.modules())
    assert not any(isinstance(m, ConvActivation) for m in model.exportable().modules())
