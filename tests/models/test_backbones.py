import pytest
import torch

from lgdk.models.backbones import Backbone, BackboneError, package_weights_file


def test_lite0_channels_from_feature_info_and_shapes():
    b = Backbone("tf_efficientnet_lite0", 3, pretrained=False)
    f4, f8, f16 = b(torch.rand(1, 3, 64, 96))
    assert (b.channels.c4, b.channels.c8, b.channels.c16) == (24, 40, 112)
    assert f4.shape == (1, 24, 16, 24)
    assert f8.shape == (1, 40, 8, 12)
    assert f16.shape == (1, 112, 4, 6)


def test_lite0_imagenet_weights_load_offline():
    path = package_weights_file("tf_efficientnet_lite0")
    assert path is not None and path.is_file()
    b = Backbone("tf_efficientnet_lite0", 3, pretrained=True)
    source = torch.load(path, weights_only=True)
    first = next(iter(source.values()))
    assert torch.equal(b.model.conv_stem.weight, first)


def test_extra_input_channels_keep_rgb_weights_and_start_at_zero():
    b = Backbone("tf_efficientnet_lite0", 5, pretrained=True)
    w = b.model.conv_stem.weight
    assert w.shape[1] == 5
    assert torch.count_nonzero(w[:, 3:]) == 0
    assert torch.count_nonzero(w[:, :3]) > 0


def test_no_unused_parameters_past_stride_16():
    b = Backbone("tf_efficientnet_lite0", 3, pretrained=False)
    sum(f.sum() for f in b(torch.rand(1, 3, 32, 32))).backward()
    assert all(p.grad is not None for p in b.parameters())


def test_unknown_backbone_is_a_clear_error():
    with pytest.raises(BackboneError, match="cannot build backbone 'no_such_net'"):
        Backbone("no_such_net")


def test_weights_file_for_another_model_is_refused(tmp_path):
    path = tmp_path / "w.pt"
    torch.save({"foo.weight": torch.zeros(3)}, path)
    with pytest.raises(BackboneError, match="matches only"):
        Backbone("tf_efficientnet_lite0", weights_file=str(path))


def test_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(BackboneError, match="not found"):
        Backbone("tf_efficientnet_lite0", weights_file=str(tmp_path / "none.pt"))


@pytest.mark.slow
@pytest.mark.parametrize("name,c16", [
    ("resnet50", 1024), ("wide_resnet50_2", 1024), ("resnest101e", 1024),
    ("seresnet152d", 1024), ("swin_base_patch4_window12_384", 512),
])
def test_paper_backbones_shapes(name, c16):
    b = Backbone(name, 3, pretrained=False).eval()  # BatchNorm frozen, as in the model
    f4, f8, f16 = b(torch.rand(1, 3, 80, 112))  # not a multiple of Swin's window
    assert f16.shape == (1, c16, 5, 7)
    assert f8.shape[-2:] == (10, 14) and f4.shape[-2:] == (20, 28)
