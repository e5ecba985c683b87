import pytest
import torch
from torch import nn

from lgdk.models.backbones import Backbone
from lgdk.models.fold import fold_batchnorm


def _randomize_bn_statistics(module: nn.Module) -> None:
    """Fresh BatchNorm layers are the identity; give them statistics worth folding."""
    for bn in module.modules():
        if isinstance(bn, nn.BatchNorm2d):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            if bn.weight is not None:
                bn.weight.data.uniform_(0.5, 1.5)
                bn.bias.data.uniform_(-0.2, 0.2)


def _count_bn(module: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in module.modules())


def test_fold_conv_then_batchnorm_keeps_the_output_and_removes_the_norm():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                        nn.ReLU(), nn.Conv2d(8, 4, 1), nn.BatchNorm2d(4)).eval()
    _randomize_bn_statistics(net)
    x = torch.randn(2, 3, 16, 16)
    before = net(x)
    assert fold_batchnorm(net) == 2
    assert _count_bn(net) == 0
    assert torch.allclose(net(x), before, atol=1e-5)


def test_a_norm_not_after_a_conv_is_left_alone():
    net = nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(3, 4, 1)).eval()
    assert fold_batchnorm(net) == 0
    assert _count_bn(net) == 1


def test_backbone_fold_gives_the_same_features_without_batchnorm():
    backbone = Backbone("tf_efficientnet_lite0").eval()
    _randomize_bn_statistics(backbone)
    x = torch.rand(1, 3, 96, 128)
    before = backbone(x)
    assert _count_bn(backbone) > 0
    assert backbone.optimize_for_inference() > 0
    assert _count_bn(backbone) == 0
    for a, b in zip(before, backbone(x)):
        assert a.shape == b.shape
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)


def test_fold_refuses_a_model_in_training_mode():
    with pytest.raises(RuntimeError, match="model.eval"):
        Backbone("tf_efficientnet_lite0").train().optimize_for_inference()
