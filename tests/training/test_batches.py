"""Channels-last (the default) against the contiguous layout: the same batches, the same
logits, the same gradients. Only the memory order may differ, never the numbers."""

from __future__ import annotations

import pytest
import torch

import convnet
from convnet.data.augment import Augment
from convnet.data.dataset import Split
from convnet.data.pixels import Normalization
from convnet.training.batches import Batches

SPEC = "conv8k3p1-bn-relu-maxpool2-conv8k3-gelu-avgpool2-dropout0.2-fc16-relu-fc"
OPS = [Augment(), Augment(flip=True, shift=2),
       Augment(flip=True, shift=1, crop_scale=0.5, jitter=0.3, cutout=4, rotate=10)]


def _split(channels: int, count: int = 32) -> Split:
    generator = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (count, channels, 12, 12), dtype=torch.uint8,
                           generator=generator)
    return Split(images, torch.arange(count) % 3)


def _batch(split: Split, ops: Augment, layout: torch.memory_format):
    batches = Batches(split, Normalization.of(split.images), ops, 16, "none", 3,
                      torch.device("cpu"), layout)
    generator = torch.Generator().manual_seed(7)
    order = batches.order(generator)
    return batches.batch(order, 1, generator)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("ops", OPS, ids=["none", "shift-flip", "everything"])
def test_the_same_batches_logits_and_gradients_in_both_layouts(channels, ops):
    split = _split(channels)
    x_last, y_last = _batch(split, ops, torch.channels_last)
    x_flat, y_flat = _batch(split, ops, torch.contiguous_format)
    assert channels == 1 or x_last.is_contiguous(memory_format=torch.channels_last)
    assert x_flat.is_contiguous()
    torch.testing.assert_close(x_last, x_flat, rtol=0, atol=1e-5)
    assert torch.equal(y_last, y_flat)

    torch.manual_seed(0)
    flat = convnet.build(SPEC, (12, 12, channels), 3)
    last = convnet.build(SPEC, (12, 12, channels), 3)
    last.load_state_dict(flat.state_dict())
    last = last.to(memory_format=torch.channels_last)
    outputs = []
    for network, x in ((flat, x_flat), (last, x_last)):
        torch.manual_seed(3)  # the same dropout mask in both
        logits = network(x)  # (B, 3)
        torch.nn.functional.cross_entropy(logits, y_flat).backward()
        outputs.append((logits.detach(), {n: p.grad for n, p in network.named_parameters()}))
    (logits_flat, grads_flat), (logits_last, grads_last) = outputs
    torch.testing.assert_close(logits_last, logits_flat, rtol=1e-4, atol=1e-5)
    for name, grad in grads_flat.items():
        torch.testing.assert_close(grads_last[name], grad, rtol=1e-4, atol=1e-5, msg=name)
