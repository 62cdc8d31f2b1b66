"""Batch shifting against a per-image reference."""

from __future__ import annotations

import torch

from convnet.augment import batch_shift


def test_batch_shift_matches_a_per_image_reference():
    images = torch.randint(0, 256, (6, 2, 9, 7), dtype=torch.uint8)
    generator = torch.Generator().manual_seed(5)
    shifted = batch_shift(images, 2, generator)
    offsets = torch.randint(0, 5, (2, 6), generator=torch.Generator().manual_seed(5))
    for b in range(6):
        canvas = torch.zeros(2, 13, 11, dtype=torch.uint8)
        canvas[:, 2:11, 2:9] = images[b]
        dy, dx = offsets[:, b].tolist()
        assert torch.equal(shifted[b], canvas[:, dy : dy + 9, dx : dx + 7])
    assert shifted.dtype == torch.uint8 and shifted.shape == images.shape


def test_zero_shift_is_identity():
    images = torch.rand(3, 1, 5, 5)
    assert batch_shift(images, 0) is images
