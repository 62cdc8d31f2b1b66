"""Looking inside: feature maps against the summary, Grad-CAM's shape, range and whether it
points at the shape, and the --at arithmetic against the layer's real output."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import convnet
from convnet.errors import ConvnetError
from convnet.network.arithmetic import explain_at, parse_at
from convnet.network.inside import feature_maps, gradcam

SPEC = "conv6k3p1-bn-relu-maxpool2-conv8k5s2p2-relu-avgpool2-conv4k3-tanh-fc"


def _net(spec: str = SPEC, shape: str = "28x28x3") -> convnet.Network:
    torch.manual_seed(0)
    net = convnet.build(spec, shape, 4)
    net.train()  # give batch norm non-trivial statistics, then freeze them
    net(torch.randn(8, *net.infos[0].in_shape))
    return net.eval()


def test_feature_map_shapes_match_the_summary():
    net = _net()
    maps = feature_maps(net, torch.randn(1, 3, 28, 28))
    assert [tuple(out.shape) for _, out in maps] == [info.out_shape for info in net.infos]
    assert [info.name for info, _ in maps] == [row.name for row in convnet.summarize(net).rows]


@pytest.mark.parametrize("layer, y, x, f", [(1, 0, 0, 0), (1, 9, 4, 5), (5, 2, 3, 7),
                                            (5, 4, 4, 0), (8, 0, 0, 3)])
def test_the_arithmetic_equals_the_real_activation(layer, y, x, f):
    net = _net()
    image = torch.randn(1, 3, 28, 28)
    result = explain_at(net, image, layer, y, x, f)
    assert result.value == pytest.approx(result.actual, abs=1e-4)
    index = next(i for i, info in enumerate(net.infos) if info.position == layer)
    with torch.no_grad():
        real = net.forward_intermediates(image)[index][1][0, f, y, x]
    assert result.actual == pytest.approx(float(real), abs=1e-6)
    # the patch, weights and products against torch's own im2col of the layer's input
    conv = net.body[index]
    with torch.no_grad():
        inputs = image if index == 0 else net.forward_intermediates(image)[index - 1][1]
        columns = F.unfold(inputs, conv.kernel_size, padding=conv.padding,
                           stride=conv.stride)  # (1, C·k·k, positions)
    width = net.infos[index].out_shape[2]
    patch = columns[0, :, y * width + x].view_as(result.patch)  # (C, k, k)
    torch.testing.assert_close(result.patch, patch)
    torch.testing.assert_close(result.weights, conv.weight[f].detach())
    torch.testing.assert_close(result.products, patch * conv.weight[f].detach())


def test_the_arithmetic_follows_the_value_through_relu_and_pooling():
    net = _net("conv4k3-relu-maxpool2-fc", "8x8x1")
    result = explain_at(net, torch.randn(1, 1, 8, 8), 1, 2, 3, 1)
    (relu_token, relu_text), (pool_token, pool_text) = result.after
    assert relu_token == "relu" and f"{max(result.actual, 0):.4f}" in relu_text
    assert pool_token == "maxpool2" and "largest of the 2×2 window" in pool_text
    assert "at (1, 1)" in pool_text  # row 2 // 2, column 3 // 2


def test_bad_at_arguments_are_named():
    net = _net()
    with pytest.raises(ConvnetError, match=r"not a convolution. Conv layers of this network: "
                                           r"\[1, 5, 8\]"):
        explain_at(net, torch.randn(1, 3, 28, 28), 3, 0, 0)
    with pytest.raises(ConvnetError, match="outside layer 1's output 28×28×6"):
        explain_at(net, torch.randn(1, 3, 28, 28), 1, 28, 0)
    assert parse_at("2:3,4") == (2, 3, 4, 0) and parse_at("1:0,0,5") == (1, 0, 0, 5)
    with pytest.raises(ConvnetError, match="at must be LAYER:Y,X"):
        parse_at("conv1:3")


def test_gradcam_shape_and_range():
    net = _net()
    cam = gradcam(net, torch.randn(1, 3, 28, 28), 2)
    assert cam.shape == (28, 28) and cam.min() >= 0 and cam.max() <= 1
    assert cam.max() == 1 or cam.max() == 0  # scaled to its peak unless nothing lit up
    assert all(p.grad is None for p in net.parameters())  # no side effect on the weights


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    data = "shapes:size=40,train=150,test=40,seed=1"
    out = tmp_path_factory.mktemp("runs") / "shapes"
    result = convnet.train(data=data, epochs=8, batch_size=32,
                           arch="conv16k3p1-bn-relu-maxpool2-conv32k3p1-bn-relu-maxpool2-"
                                "conv32k3p1-bn-relu-gap-fc", out=out)
    return result, convnet.datasets.load(data)


def test_gradcam_points_at_the_drawn_shape(shapes_run):
    result, data = shapes_run
    run = result.run
    assert result.test.accuracy > 0.8
    inside_share, box_share = [], []
    for image, label in zip(data.test.images[:120], data.test.labels[:120]):
        if run.class_index(None, image) != int(label):
            continue
        cam = run.gradcam(image, int(label))  # (40, 40)
        ink = torch.nonzero(image[0] > 128)  # the stroke's pixels
        top, left = (ink.min(0).values - 2).clamp(min=0)
        bottom, right = ink.max(0).values + 3
        box = torch.zeros_like(cam, dtype=torch.bool)
        box[top:bottom, left:right] = True
        if cam.sum() > 0:
            inside_share.append(float(cam[box].sum() / cam.sum()))
            box_share.append(float(box.float().mean()))
    mean_inside = sum(inside_share) / len(inside_share)
    mean_box = sum(box_share) / len(box_share)
    print(f"Grad-CAM share inside the box {mean_inside:.2f}, box share of the image "
          f"{mean_box:.2f}, {len(inside_share)} images")
    # most of the heat lies on the shape's box, well above what a uniform map would give
    assert len(inside_share) > 60 and mean_inside > 0.6 and mean_inside > mean_box + 0.15
