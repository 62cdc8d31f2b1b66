"""Frozen layers: the first N layers run without gradients while training, and the rest
get the gradients plain autograd gives them with those layers' weights held fixed (the
reference: the same network with ``requires_grad`` cleared by hand and no ``no_grad``)."""

from __future__ import annotations

import copy

import pytest
import torch

import convnet
from convnet.errors import ConvnetError

SPEC = "conv6k3-bn-relu-skip-conv6k3p1-bn-relu-add-maxpool2-conv8k3-bn-relu-gap-fc"


@pytest.mark.parametrize("count", [0, 3, 6, 9])
def test_the_rest_gets_the_gradients_autograd_gives_it(count):
    torch.manual_seed(0)
    net = convnet.build(SPEC, "12x12x3", num_classes=3)
    reference = copy.deepcopy(net)
    for module in reference.body[:count]:  # held fixed by hand; batch norm in eval mode
        module.requires_grad_(False)
    net.freeze_layers(count)
    net.train()
    reference.train()
    for module in reference.body[:count].modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.eval()
    x, y = torch.randn(4, 3, 12, 12), torch.tensor([0, 1, 2, 1])
    for model in (net, reference):
        torch.nn.functional.cross_entropy(model(x), y).backward()
    for (name, mine), theirs in zip(net.named_parameters(), reference.parameters()):
        index = int(name.split(".")[1])
        if index < count:
            assert mine.grad is None and not mine.requires_grad, name
        else:
            assert torch.allclose(mine.grad, theirs.grad, atol=1e-6), name
    # the frozen batch norms kept their statistics; the others moved
    fresh = convnet.build(SPEC, "12x12x3", num_classes=3).state_dict()
    for name, value in net.state_dict().items():
        if name.endswith("running_mean"):
            assert torch.equal(value, fresh[name]) == (int(name.split(".")[1]) < count), name


def test_a_count_past_the_feature_layers_is_one_clear_error():
    net = convnet.build(SPEC, "12x12x3", num_classes=3)
    with pytest.raises(ConvnetError, match=r"frozen_layers must be a layer count from 0 to "
                       r"\d+ \(the layers before the flatten\). Received: frozen_layers=99."):
        net.freeze_layers(99)


def test_a_negative_count_is_refused_by_the_config():
    from convnet.training.config import TrainConfig

    with pytest.raises(ConvnetError, match=r"frozen_layers must be 0 or more\. Received: "
                       r"frozen_layers=-1\."):
        TrainConfig(data="digits", init="imagenet", frozen_layers=-1)
