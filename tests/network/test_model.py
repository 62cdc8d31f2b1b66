"""Networks built from specs: shapes against real forward passes, parameter counts by hand,
gradients against finite differences, and the conv layer's shift equivariance."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import convnet
from convnet.errors import ConvnetError, SpecError
from convnet.network.model import parse_input_shape
from convnet.network.spec import Conv


def test_lenet_parameter_count_by_hand():
    # conv6k5p2: 6·(1·5·5)+6 = 156; conv16k5: 16·(6·5·5)+16 = 2,416; fc120: 400·120+120 =
    # 48,120; fc84: 120·84+84 = 10,164; fc10: 84·10+10 = 850.
    assert convnet.build("lenet", "28x28x1", 10).num_params == 156 + 2416 + 48120 + 10164 + 850


def test_keras_example_parameter_count():
    # The Keras 'simple MNIST convnet' reports 34,826 trainable parameters.
    net = convnet.build("conv32k3-relu-maxpool2-conv64k3-relu-maxpool2-dropout0.5-fc10")
    assert net.num_params == 34_826


def test_four_conv_layers_of_64_3x3_filters():
    # The texts count (3·3)·64·4 = 2,304 weights, ignoring that filters are as deep as their
    # input and that each has a bias. The real count on a 1-channel input:
    net = convnet.build("conv64k3-conv64k3-conv64k3-conv64k3-fc", "28x28x1", 2)
    convs = [info for info in net.infos if isinstance(info.layer, Conv)]
    texts = sum(info.layer.kernel ** 2 * info.layer.filters for info in convs)
    assert texts == 2304  # the texts' figure: one k×k slice per filter, no bias
    counted = sum(info.params for info in convs)
    assert counted == (9 * 1 * 64 + 64) + 3 * (9 * 64 * 64 + 64)
    # and torch agrees: the Conv2d modules' own weights and biases
    assert counted == sum(p.numel() for module in net.body if isinstance(module, nn.Conv2d)
                          for p in module.parameters())


def test_tinyvgg_on_cnn_explainer_input():
    net = convnet.build("tinyvgg", "64x64x3", 10)
    assert net.infos[-1].in_shape == (1690,)  # 13×13×10 before the output layer
    assert net.num_params == 280 + 3 * 910 + 16910


def test_summary_fully_connected_comparison_from_the_texts():
    summary = convnet.summarize(convnet.build("conv8k3-relu-fc", "50x50x3", 2), hidden=2000)
    assert summary.fully_connected.weights == 15_004_000


def test_summary_receptive_fields_and_macs():
    net = convnet.build("conv8k3-maxpool2-conv8k3-maxpool2-conv8k3-fc", "32x32x1", 2)
    fields = [info.receptive_field for info in net.infos[:5]]
    assert fields == [3, 4, 8, 10, 18]  # r += (k − 1)·jump, jump *= stride
    first = net.infos[0]
    assert first.macs == 30 * 30 * 8 * (1 * 3 * 3)


maps = st.one_of(
    st.tuples(st.just("conv"), st.integers(1, 6), st.integers(1, 5), st.integers(1, 3),
              st.sampled_from(["", "p1", "p2", "psame"])),
    st.tuples(st.sampled_from(["maxpool", "avgpool"]), st.integers(1, 3),
              st.one_of(st.none(), st.integers(1, 3))),
    st.sampled_from(["relu", "tanh", "sigmoid", "bn", "dropout0.2"]),
)


def _token(choice) -> str:
    if isinstance(choice, str):
        return choice
    if choice[0] == "conv":
        _, filters, kernel, stride, pad = choice
        if pad == "psame" and kernel % 2 == 0:
            pad = ""
        return f"conv{filters}k{kernel}" + (f"s{stride}" if stride > 1 else "") + pad
    kind, window, stride = choice
    return f"{kind}{window}" + (f"s{stride}" if stride else "")


@settings(max_examples=60, deadline=None)
@given(st.lists(maps, min_size=1, max_size=5), st.integers(5, 40), st.integers(5, 40),
       st.sampled_from([1, 3]), st.sampled_from(["", "-fc7-relu", "-gap"]))
def test_inferred_shapes_match_forward_pass(layers, height, width, channels, tail):
    spec = "-".join(_token(layer) for layer in layers) + tail + "-fc"
    try:
        net = convnet.build(spec, (height, width, channels), 3)
    except SpecError as error:
        assert "below 1" in str(error)
        return
    net.eval()
    x = torch.randn(2, channels, height, width)
    for info, output in net.forward_intermediates(x):
        assert tuple(output.shape[1:]) == info.out_shape, (spec, info.name)
    assert net(x).shape == (2, 3)
    assert net.forward_head(net.forward_features(x)).shape == (2, 3)


def test_spec_that_does_not_fit_fails_before_training_with_the_formula():
    with pytest.raises(SpecError) as caught:
        convnet.build("conv8k3-maxpool2-conv8k3-maxpool2-conv8k5-fc", "12x12x1", 2)
    assert str(caught.value) == (
        "Spec token 5 'conv8k5' does not fit its input 1×1×8: output size (W − F + 2P)/S + 1"
        " = (1 − 5 + 2×0)/1 + 1 = -3, below 1. Use fewer or smaller pooling layers, padding "
        "(p1, psame), a smaller kernel, or a larger input. Received: network input 12×12×1.")


def test_tiny_inputs_work():
    net = convnet.build("conv4k3-relu-fc", "5x5x1", 2)
    assert net(torch.zeros(1, 1, 5, 5)).shape == (1, 2)
    assert convnet.build("conv4k3psame-maxpool2-fc", "300x300x3", 2).infos[1].out_shape == (
        4, 150, 150)


def test_gradcheck_through_an_assembled_network():
    torch.manual_seed(0)
    net = convnet.build("conv3k3p1-tanh-avgpool2-conv2k2s2-sigmoid-fc5-tanh-fc", "8x8x2", 3)
    net = net.double()
    x = torch.randn(2, 2, 8, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(net, (x,), eps=1e-6, atol=1e-5)
    # Parameter gradients against central finite differences, one weight per tensor.
    loss = net(x).pow(2).sum()
    grads = torch.autograd.grad(loss, list(net.parameters()))
    with torch.no_grad():
        for param, grad in zip(net.parameters(), grads):
            flat = param.view(-1)
            old = flat[0].item()
            flat[0] = old + 1e-6
            up = net(x).pow(2).sum().item()
            flat[0] = old - 1e-6
            down = net(x).pow(2).sum().item()
            flat[0] = old
            assert abs((up - down) / 2e-6 - grad.view(-1)[0].item()) < 1e-5


def test_conv_matches_a_hand_computed_dot_product():
    net = convnet.build("conv2k3-fc", "6x6x3", 2)
    conv = net.body[0]
    x = torch.randn(1, 3, 6, 6)
    out = conv(x)  # (1, 2, 4, 4)
    patch = x[0, :, 1:4, 2:5]  # filters are as deep as the input: (3, 3, 3)
    expected = (patch * conv.weight[1]).sum() + conv.bias[1]
    assert torch.allclose(out[0, 1, 1, 2], expected, atol=1e-6)


def test_convolution_is_shift_equivariant():
    torch.manual_seed(0)
    conv = convnet.build("conv4k3-fc", "20x20x1", 2).body[0]
    x = torch.zeros(1, 1, 20, 20)
    x[0, 0, 5:9, 4:10] = torch.rand(4, 6)
    shifted = torch.roll(x, shifts=(3, 2), dims=(2, 3))  # content stays inside the frame
    with torch.no_grad():
        a, b = conv(x), conv(shifted)
    assert torch.allclose(torch.roll(a, shifts=(3, 2), dims=(2, 3))[..., 3:, 2:],
                          b[..., 3:, 2:], atol=1e-6)


@pytest.mark.parametrize("text, shape", [("28x28x1", (28, 28, 1)), ("32×32×3", (32, 32, 3)),
                                         ("28x28", (28, 28, 1)), ((5, 5, 1), (5, 5, 1))])
def test_input_shapes(text, shape):
    assert parse_input_shape(text) == shape


@pytest.mark.parametrize("text", ["28", "0x28x1", "axbxc", "28x28x1x1", "-1x5x1"])
def test_bad_input_shapes(text):
    with pytest.raises(ConvnetError, match="The input shape must be HxWxC"):
        parse_input_shape(text)


def test_auto_picks_default_for_small_grayscale_and_small_otherwise():
    from convnet.network.presets import PRESETS

    assert convnet.build("auto", "28x28x1", 10).spec == convnet.build("default", "28x28x1",
                                                                       10).spec
    photo = convnet.build("auto", "96x96x3", 5)
    assert photo.spec.startswith(PRESETS["small"].spec.split("-")[0]) and "gap" in photo.spec


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_forward_runs_pool_before_activation_with_the_same_values_and_gradients(activation):
    spec = f"conv6k3-bn-{activation}-maxpool2-conv8k3-{activation}-maxpool3s2-fc5-relu-fc"
    net = convnet.build(spec, "20x20x2", 3).double()
    net.train()  # batch norm on batch statistics: the swap must hold there too
    x = torch.randn(6, 2, 20, 20, dtype=torch.double)

    def literal(inputs):  # the spec's own order, one module after another
        for module in net.body:
            inputs = module(inputs)
        return inputs

    reference = literal(x)
    reference.square().sum().backward()
    expected = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    fast = net(x)
    fast.square().sum().backward()
    torch.testing.assert_close(fast, reference)
    for got, want in zip((p.grad for p in net.parameters()), expected):
        torch.testing.assert_close(got, want)
    kinds = [type(net.body[i]).__name__ for i in net._order[:4]]
    assert kinds == ["Conv2d", "BatchNorm2d", "MaxPool2d", type(net.body[2]).__name__]


def test_average_pooling_is_not_swapped():
    net = convnet.build("conv4k3-relu-avgpool2-fc", "8x8x1", 2)
    assert net._order == list(range(len(net.body)))


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.75])
def test_byte_dropout_rate_scale_and_gradient(p):
    from convnet.network.modules import ByteDropout
    torch.manual_seed(0)
    layer = ByteDropout(p).train()
    x = torch.ones(400, 1000, requires_grad=True)
    y = layer(x)
    kept = y != 0
    rate = 1 - kept.double().mean().item()
    assert abs(rate - round(p * 256) / 256) < 0.005  # 400,000 draws: sd ≈ 0.0008
    assert abs(y.mean().item() - 1) < 0.01  # kept values scaled so the mean is unchanged
    y.sum().backward()
    torch.testing.assert_close(x.grad, y.detach())  # gradient = the mask times the scale
    assert torch.equal(layer.eval()(x), x)


def test_byte_dropout_draws_from_the_seeded_generator():
    from convnet.network.modules import ByteDropout
    layer = ByteDropout(0.5).train()
    torch.manual_seed(3)
    first = layer(torch.ones(64, 64))
    torch.manual_seed(3)
    assert torch.equal(layer(torch.ones(64, 64)), first)


def test_whitening_layer_decorrelates_patches_to_unit_variance():
    torch.manual_seed(0)
    # correlated channels: the second and third are mostly the first
    base = torch.randn(200, 1, 12, 12)
    x = torch.cat([base, 0.9 * base + 0.1 * torch.randn_like(base),
                   torch.randn(200, 1, 12, 12) * 3], dim=1)  # (200, 3, 12, 12)
    net = convnet.build("whiten2-conv4k3-fc", "12x12x3", 2)
    assert net.has_whitening and net.infos[0].out_shape == (24, 11, 11)
    net.fit_whitening(x)  # eps 5e-4 shrinks only the near-flat directions
    with torch.no_grad():
        shrunk = net.body[0](x)[:, :12].permute(0, 2, 3, 1).reshape(-1, 12).var(dim=0)
        net.body[0].fit(x, eps=1e-9)
        maps = net.body[0](x)  # (200, 24, 11, 11)
    first = maps[:, :12].permute(0, 2, 3, 1).reshape(-1, 12).double()  # one row per patch
    covariance = torch.cov(first.T)
    torch.testing.assert_close(covariance, torch.eye(12, dtype=torch.double),
                               atol=0.05, rtol=0)
    torch.testing.assert_close(maps[:, 12:], -maps[:, :12])  # each filter and its negative
    assert (shrunk <= 1.01).all() and (shrunk[:8] > 0.99).all()  # largest directions first
    assert not net.body[0].weight.requires_grad and net.body[0].bias.requires_grad


def test_gelu_before_max_pooling_is_not_swapped():
    net = convnet.build("conv4k3-gelu-maxpool2-fc", "8x8x1", 2)
    assert net._order == list(range(len(net.body)))
