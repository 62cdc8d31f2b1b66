"""The layers of mobile networks (EfficientNet-Lite, MobileNet): grouped and depthwise
convolutions, convolutions without a bias, ReLU6, and TensorFlow's "same" padding. Each is
checked against torch's functional ops on independently padded input, and the summary's
shapes, weights, multiply-adds and receptive fields against hand counts."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import convnet
from convnet.errors import SpecError
from convnet.network.arithmetic import explain_at

SPEC = ("conv8k3s2ptfnb-bn-relu6-dwconvk3s2ptfnb-bn-relu6-conv12k1-conv6k3g3-"
        "dwconvk5psamem2-gap-fc")


def _tf_same(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """TensorFlow's SAME padding, written from its definition: output ceil(n / s), the
    padding that needs, and the extra pixel after (bottom, right)."""
    pads = []
    for size in (x.shape[3], x.shape[2]):  # F.pad takes the last dimension first
        needed = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        pads += [needed // 2, needed - needed // 2]
    return F.pad(x, pads)


@pytest.mark.parametrize("height, width", [(17, 16), (16, 16), (15, 9), (12, 11)])
def test_layers_equal_torch_functional_ops(height, width):
    torch.manual_seed(0)
    network = convnet.build(SPEC, (height, width, 3), 4).eval()
    x = torch.randn(2, 3, height, width)
    outputs = network.forward_intermediates(x)
    body = network.body
    first = F.conv2d(_tf_same(x, 3, 2), body[0].weight, None, 2)  # no bias
    assert torch.allclose(outputs[0][1], first, atol=1e-6)
    relu6 = outputs[2][1]
    assert relu6.min() >= 0 and relu6.max() <= 6
    assert torch.equal(relu6, outputs[1][1].clamp(0, 6))
    depthwise = F.conv2d(_tf_same(relu6, 3, 2), body[3].weight, None, 2, groups=8)
    assert torch.allclose(outputs[3][1], depthwise, atol=1e-6)
    grouped = F.conv2d(outputs[6][1], body[7].weight, body[7].bias, groups=3)
    assert torch.allclose(outputs[7][1], grouped, atol=1e-6)
    doubled = F.conv2d(outputs[7][1], body[8].weight, body[8].bias, padding=2, groups=6)
    assert torch.allclose(outputs[8][1], doubled, atol=1e-6)
    for info, output in outputs:
        assert tuple(output.shape[1:]) == info.out_shape, info.name
    assert outputs[0][1].shape[2:] == (math.ceil(height / 2), math.ceil(width / 2))


def test_weights_multiply_adds_and_receptive_fields_by_hand():
    network = convnet.build(SPEC, (17, 16, 3), 4)
    infos = {info.position: info for info in network.infos if info.position}
    assert [infos[n].params for n in (1, 4, 7, 8, 9)] == [
        8 * 3 * 9,            # no bias
        8 * 1 * 9,            # one 3×3 filter per channel, no bias
        12 * 8 + 12,          # pointwise, with its bias
        6 * (12 // 3) * 9 + 6,  # three groups of four channels
        12 * 1 * 25 + 12]     # two filters for each of six channels
    assert infos[4].macs == 8 * 9 * 5 * 4  # 9×8 maps in, 5×4 out at stride 2
    assert infos[8].macs == 6 * 4 * 9 * 3 * 2
    assert [infos[n].receptive_field for n in (1, 4, 7, 8, 9)] == [3, 7, 7, 15, 31]
    assert network.num_params == sum(info.params for info in network.infos)


def test_arithmetic_at_a_grouped_depthwise_and_unevenly_padded_conv():
    torch.manual_seed(1)
    network = convnet.build(SPEC, (17, 16, 3), 4).eval()
    x = torch.randn(1, 3, 17, 16)
    for position in (1, 4, 8, 9):
        info = next(i for i in network.infos if i.position == position)
        filters, height, width = info.out_shape
        for y, col, f in ((0, 0, 0), (height - 1, width - 1, filters - 1),
                          (height // 2, width // 3, filters // 2)):
            found = explain_at(network, x, position, y, col, f)
            assert abs(found.value - found.actual) < 1e-4, (position, y, col, f)


@pytest.mark.parametrize("spec, message", [
    ("conv8k3-conv6k3g4-fc", "splits its channels into 4 groups, which must divide both its "
     "8 input channels and its 6 filters"),
    ("conv8k3g2-fc", "splits its channels into 2 groups, which must divide both its 3 input "
     "channels"),
])
def test_groups_that_do_not_divide_are_refused(spec, message):
    with pytest.raises(SpecError, match=message):
        convnet.build(spec, (8, 8, 3), 2)


def test_a_residual_connection_adds_the_skipped_maps_back():
    torch.manual_seed(2)
    network = convnet.build("conv6k3p1-skip-conv12k1nb-bneps0.001-relu6-dwconvk3ptfnb-"
                            "conv6k1-add-gap-fc", (9, 10, 3), 2).eval()
    x = torch.randn(3, 3, 9, 10)
    body = network.body
    kept = body[0](x)
    branch = kept
    for index in range(2, 7):
        branch = body[index](branch)
    expected = body[10](body[9](body[8](branch + kept)))
    assert torch.allclose(network(x), expected, atol=1e-6)
    outputs = network.forward_intermediates(x)
    assert torch.allclose(outputs[7][1], branch + kept, atol=1e-6)  # the add's output
    assert body[3].eps == 1e-3
    infos = {info.name: info for info in network.infos}
    assert infos["add"].receptive_field == 5 and infos["add"].out_shape == (6, 9, 10)


def test_a_residual_connection_needs_one_shape_on_both_paths():
    with pytest.raises(SpecError, match=r"'add' adds maps of 9×10×6 \(from its skip\) to "
                       r"maps of 5×5×6"):
        convnet.build("conv6k3p1-skip-conv6k3s2p1-add-fc", (9, 10, 3), 2)
