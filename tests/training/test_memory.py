"""The memory estimate that refuses a run before it starts: its arithmetic against a count
by hand, and the refusal naming the figures and a batch size that fits."""

from __future__ import annotations

import pytest
import torch

from convnet.errors import ConvnetError
from convnet.network import layer_shapes
from convnet.training import memory

CPU = torch.device("cpu")


def test_the_estimate_counts_activations_weights_and_images():
    infos = layer_shapes("conv4k3-relu-maxpool2-fc", (10, 10, 1), 2)
    step, rest = memory.training_bytes(infos, (1, 10, 10), batch_size=8, images=100)
    # outputs: conv 4×8×8, relu 4×8×8, pool 4×4×4, flatten 64, fc 2; input 1×10×10
    activations = 256 + 256 + 64 + 64 + 2 + 100
    assert step == 2 * 4 * 8 * activations
    weights = 4 * 9 + 4 + 64 * 2 + 2
    assert rest == 4 * 4 * weights + 100 * 100


def test_an_absurd_batch_is_refused_with_a_batch_size_that_fits(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda device: 4 * 10**9)
    infos = layer_shapes("conv64k3p1-relu-fc", (256, 256, 3), 10)
    with pytest.raises(ConvnetError) as caught:
        memory.check_fits(infos, (3, 256, 256), batch_size=100_000, images=1000, device=CPU)
    message = str(caught.value)
    assert message.startswith("Training on 256×256×3 images in batches of 100000 needs about ")
    assert "and cpu has 4.0 GB available. Use batch_size=" in message
    fitting = int(message.split("Use batch_size=")[1].split()[0])
    memory.check_fits(infos, (3, 256, 256), batch_size=fitting, images=1000, device=CPU)
    with pytest.raises(ConvnetError, match=f"in batches of {fitting + 1} needs about .* Use "
                       "batch_size="):
        memory.check_fits(infos, (3, 256, 256), batch_size=fitting + 1, images=1000,
                          device=CPU)


def test_unknown_memory_does_not_block(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda device: None)
    infos = layer_shapes("conv4k3-relu-fc", (10, 10, 1), 2)
    memory.check_fits(infos, (1, 10, 10), batch_size=10**9, images=10, device=CPU)
