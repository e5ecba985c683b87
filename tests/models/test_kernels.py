import torch
import torch.nn.functional as F

from lgdk.models.kernels import KernelHead, dynamic_conv, dynamic_conv_ungrouped


def test_dynamic_conv_equals_conv2d_with_generated_weights():
    head = KernelHead(object_dim=6, feature_dim=4, use_local=True, use_global=True)
    feats = torch.randn(3, 4, 9, 7)  # B*N = 3
    g, loc = torch.randn(1, 3, 6), torch.randn(1, 3, 6)
    weight, bias = head.generate(g, loc)
    assert weight.shape == (3, 4, 3, 3) and bias.shape == (3,)
    out = head(feats, g, loc)
    for i in range(3):
        ref = F.conv2d(feats[i : i + 1], weight[i : i + 1], bias[i : i + 1], padding=1)
        assert torch.allclose(out[i : i + 1], ref, atol=1e-5)
    assert torch.allclose(out, dynamic_conv(feats, weight, bias))
    assert torch.allclose(out, dynamic_conv_ungrouped(feats, weight, bias), atol=1e-5)


def test_kernel_depends_on_the_object_features_it_is_given():
    head = KernelHead(6, 4, use_local=True, use_global=True)
    torch.nn.init.normal_(head.fc[-1].weight)
    a = head.generate(torch.zeros(1, 1, 6), torch.zeros(1, 1, 6))[0]
    b = head.generate(torch.zeros(1, 1, 6), torch.ones(1, 1, 6))[0]
    c = head.generate(torch.ones(1, 1, 6), torch.zeros(1, 1, 6))[0]
    assert not torch.allclose(a, b) and not torch.allclose(a, c)


def test_fc_input_is_the_concatenation_of_enabled_features():
    both = KernelHead(6, 4, True, True)
    local = KernelHead(6, 4, True, False)
    glob = KernelHead(6, 4, False, True)
    assert both.fc[0].in_features == 12
    assert local.fc[0].in_features == 6 and glob.fc[0].in_features == 6
    assert len([m for m in both.fc if isinstance(m, torch.nn.Linear)]) == 3


def test_local_only_ignores_global_and_vice_versa():
    local = KernelHead(6, 4, True, False)
    w1 = local.generate(torch.zeros(1, 1, 6), torch.ones(1, 1, 6))[0]
    w2 = local.generate(torch.ones(1, 1, 6) * 5, torch.ones(1, 1, 6))[0]
    assert torch.equal(w1, w2)
    glob = KernelHead(6, 4, False, True)
    w1 = glob.generate(torch.ones(1, 1, 6), torch.zeros(1, 1, 6))[0]
    w2 = glob.generate(torch.ones(1, 1, 6), torch.ones(1, 1, 6) * 5)[0]
    assert torch.equal(w1, w2)


def test_no_dynamic_kernel_is_a_static_conv():
    head = KernelHead(6, 4, False, False)
    assert not hasattr(head, "fc")
    feats = torch.randn(2, 4, 5, 5)
    out1 = head(feats, torch.zeros(1, 2, 6), torch.zeros(1, 2, 6))
    out2 = head(feats, torch.ones(1, 2, 6), torch.ones(1, 2, 6))
    assert torch.equal(out1, out2) and torch.allclose(out1, head.static(feats))


def test_dynamic_conv_is_the_grouped_convolution_in_any_layout_size_and_gradient():
    for k, channels_last in [(3, True), (5, False), (1, True)]:
        feats = torch.randn(4, 6, 11, 13, requires_grad=True)
        weight = torch.randn(4, 6, k, k, requires_grad=True)
        bias = torch.randn(4, requires_grad=True)
        x = feats.contiguous(memory_format=torch.channels_last) if channels_last else feats
        grouped = F.conv2d(feats.reshape(1, 24, 11, 13), weight, bias, padding=k // 2,
                           groups=4).view(4, 1, 11, 13)
        ours = dynamic_conv(x, weight, bias)
        assert torch.allclose(ours, grouped, atol=1e-4)
        want = torch.autograd.grad(grouped.square().sum(), (feats, weight, bias))
        got = torch.autograd.grad(ours.square().sum(), (feats, weight, bias))
        assert all(torch.allclose(a, b, atol=1e-3) for a, b in zip(want, got))
