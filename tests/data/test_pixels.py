"""Normalisation statistics, computed in chunks, against torch's own mean and std."""

from __future__ import annotations

import torch

from convnet.data.pixels import Normalization


def test_chunked_statistics_match_torch_over_the_whole_set():
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (9000, 3, 6, 5), dtype=torch.uint8, generator=generator)
    images[:, 2] //= 4  # channels with different statistics
    found = Normalization.of(images)
    scaled = images.double() / 255
    assert torch.allclose(found.mean, scaled.mean(dim=(0, 2, 3)).float(), atol=1e-6)
    assert torch.allclose(found.std, scaled.std(dim=(0, 2, 3)).float(), atol=1e-6)


def test_a_blank_channel_gets_a_finite_std():
    found = Normalization.of(torch.full((10, 1, 4, 4), 7, dtype=torch.uint8))
    assert abs(found.std.item() - 1e-3) < 1e-9 and abs(found.mean.item() - 7 / 255) < 1e-7
