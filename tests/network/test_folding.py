"""Batch norms folded into their convolutions answer as the network does, in a copy that
leaves the network as it was; and a predictor folds again only when the weights change."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convnet.data.pixels import Normalization
from convnet.network import build
from convnet.network.folding import folded, weights_key
from convnet.runs.predictor import Predictor


def _with_statistics(network: nn.Module, seed: int = 0) -> nn.Module:
    """Batch norms with running statistics and affine weights far from their start, so
    that a wrong fold could not pass for a right one."""
    generator = torch.Generator().manual_seed(seed)
    for module in network.modules():
        if isinstance(module, nn.BatchNorm2d):
            size = module.num_features
            module.running_mean.copy_(torch.randn(size, generator=generator))
            module.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
            module.weight.data.copy_(torch.randn(size, generator=generator))
            module.bias.data.copy_(torch.randn(size, generator=generator))
    return network.eval()


@pytest.mark.parametrize("arch, shape", [
    ("conv8k3nb-bn-relu-conv8k3s2-bn-relu-maxpool2-gap-fc", (20, 20, 3)),
    ("efficientnet-lite0", (64, 64, 3)),
])
def test_the_folded_copy_answers_as_the_network(arch, shape):
    torch.manual_seed(0)
    network = _with_statistics(build(arch, shape, 5))
    norms = sum(isinstance(m, nn.BatchNorm2d) for m in network.modules())
    x = torch.randn(4, shape[2], shape[0], shape[1])
    with torch.no_grad():
        expected = network(x)  # the reference: eval-mode batch norm, as torch runs it
        answer = folded(network)
        found = answer(x)
        embedded, raw = answer.forward_embeddings(x)
    assert torch.allclose(found, expected, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        reference = network.forward_embeddings(x)
    assert torch.allclose(raw, reference[1], atol=1e-5, rtol=1e-5)
    assert torch.allclose(embedded, reference[0], atol=1e-5, rtol=1e-5)
    # the copy has no batch norm left after a convolution; the network keeps its own
    assert sum(isinstance(m, nn.BatchNorm2d) for m in answer.modules()) == 0
    assert sum(isinstance(m, nn.BatchNorm2d) for m in network.modules()) == norms > 0


def test_nothing_to_fold_gives_the_network_itself():
    plain = build("conv4k3-relu-gap-fc", (8, 8, 1), 2)
    assert folded(plain) is plain
    vectors = build("conv4k3-relu-flatten-fc8-bn-relu-fc", (8, 8, 1), 2)  # a 1-D norm
    assert folded(vectors) is vectors
    wrapped = nn.Sequential(plain)  # not a Network (as under DistributedDataParallel)
    assert folded(wrapped) is wrapped


def test_a_predictor_folds_again_only_when_the_weights_change():
    torch.manual_seed(0)
    network = _with_statistics(build("conv8k3nb-bn-relu-gap-fc", (12, 12, 3), 3))
    predictor = Predictor(network, Normalization(torch.zeros(3), torch.ones(3)), ["a", "b", "c"])
    images = torch.randint(0, 256, (6, 3, 12, 12), dtype=torch.uint8)
    first = predictor.logits(images)
    kept = predictor.answering()
    assert predictor.answering() is kept and weights_key(network) == weights_key(network)
    assert all(weight.is_contiguous(memory_format=predictor.memory_format)
               for weight in kept.parameters() if weight.dim() == 4)  # as its batches
    with torch.no_grad():
        network.body[1].running_mean.add_(1.0)  # the statistics change in place
    changed = predictor.logits(images)
    assert predictor.answering() is not kept and not torch.allclose(changed, first)
    with torch.no_grad():  # the reference: the network's own eval-mode pass
        expected = network(images.float() / 255)
    assert torch.allclose(changed, expected, atol=1e-5, rtol=1e-5)


def _second_conv_output(answer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    convs = [module for module in answer.modules() if isinstance(module, nn.Conv2d)]
    found = []
    handle = convs[1].register_forward_hook(lambda _m, _i, output: found.append(output))
    with torch.no_grad():
        answer(x)
    handle.remove()
    return found[0]


def test_the_copy_takes_the_batches_layout_so_a_gray_network_runs_channels_last():
    """A network of one input channel whose weights are in torch's default layout (as read
    from a file) ran its layers in NCHW on channels-last batches, 2-3 times slower here;
    the copy's weights take the batches' layout, and its layers' outputs follow."""
    torch.manual_seed(0)
    spec = "conv8k3p1-bn-relu-maxpool2-conv16k3p1-bn-relu-gap-fc"
    network = _with_statistics(build(spec, (16, 16, 1), 3))
    x = torch.randn(4, 1, 16, 16).contiguous(memory_format=torch.channels_last)
    as_saved = _second_conv_output(folded(network), x)
    assert as_saved.is_contiguous() and not as_saved.is_contiguous(
        memory_format=torch.channels_last)  # what the layout mends
    answer = folded(network, torch.channels_last)
    laid = _second_conv_output(answer, x)
    assert laid.is_contiguous(memory_format=torch.channels_last) and not laid.is_contiguous()
    assert all(weight.is_contiguous(memory_format=torch.channels_last)
               for weight in answer.parameters() if weight.dim() == 4)
    assert all(weight.is_contiguous() for weight in network.parameters())  # left as it was
    with torch.no_grad():
        assert torch.allclose(answer(x), network(x), atol=1e-5, rtol=1e-5)
    plain = build("conv4k3-relu-conv4k3-relu-gap-fc", (8, 8, 1), 2)  # nothing to fold
    moved = folded(plain, torch.channels_last)
    assert moved is not plain and all(weight.is_contiguous() for weight in plain.parameters())
    assert folded(moved, torch.channels_last) is moved  # laid out already: itself
