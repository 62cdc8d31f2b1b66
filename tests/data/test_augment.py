"""Batch augmentations against per-image references; shape, range and seeds."""

from __future__ import annotations

import pytest
import torch

from convnet.data.augment import (
    Augment,
    augment_batch,
    batch_cutout,
    batch_flip,
    batch_jitter,
    batch_resized_crop,
    batch_rotate,
    batch_shift,
    policy,
    rotate_zoom,
)


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


def test_shift_with_flip_matches_shift_then_mirror_per_image():
    images = torch.randint(0, 256, (8, 3, 6, 5), dtype=torch.uint8)
    shifted = batch_shift(images, 1, torch.Generator().manual_seed(2), flip=True)
    generator = torch.Generator().manual_seed(2)
    offsets = torch.randint(0, 3, (2, 8), generator=generator)
    mirrored = torch.rand(8, generator=generator) < 0.5
    assert 0 < int(mirrored.sum()) < 8
    for b in range(8):
        canvas = torch.zeros(3, 8, 7, dtype=torch.uint8)
        canvas[:, 1:7, 1:6] = images[b]
        dy, dx = offsets[:, b].tolist()
        crop = canvas[:, dy : dy + 6, dx : dx + 5]
        assert torch.equal(shifted[b], crop.flip(-1) if mirrored[b] else crop)


def test_zero_shift_is_identity():
    images = torch.rand(3, 1, 5, 5)
    assert batch_shift(images, 0) is images


def _images(seed: int = 0, shape=(8, 3, 16, 16)) -> torch.Tensor:
    return torch.randint(0, 256, shape, dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(seed))


def test_flip_mirrors_exactly_the_drawn_half():
    images = _images().float()
    flipped = batch_flip(images, torch.Generator().manual_seed(3))
    mask = torch.rand(8, generator=torch.Generator().manual_seed(3)) < 0.5
    for b in range(8):
        expected = images[b].flip(-1) if mask[b] else images[b]
        assert torch.equal(flipped[b], expected)


def test_cutout_zeroes_one_clipped_square_per_image():
    images = torch.ones(16, 1, 10, 10)
    cut = batch_cutout(images, 4, torch.Generator().manual_seed(1))
    for b in range(16):
        rows, cols = torch.nonzero(cut[b, 0] == 0, as_tuple=True)
        assert 1 <= len(rows) <= 16
        height = int(rows.max() - rows.min() + 1)
        width = int(cols.max() - cols.min() + 1)
        assert len(rows) == height * width and height <= 4 and width <= 4  # a rectangle


def test_jitter_keeps_the_range_and_grey_stays_grey():
    images = _images().float() / 255
    jittered = batch_jitter(images, 0.4, torch.Generator().manual_seed(2))
    assert jittered.min() >= 0 and jittered.max() <= 1 and jittered.shape == images.shape
    grey = torch.full((4, 3, 5, 5), 0.5)
    out = batch_jitter(grey, 0.4, torch.Generator().manual_seed(2))
    assert torch.allclose(out, out[:, :1].expand_as(out))  # saturation cannot add colour


def test_resized_crop_zooms_without_flipping_or_leaving_the_image():
    ramp = torch.arange(16.0).expand(4, 1, 16, 16).clone()  # value = column index
    out = batch_resized_crop(ramp, 0.3, torch.Generator().manual_seed(0))
    assert out.shape == ramp.shape
    assert (out.diff(dim=3) >= -1e-4).all()  # left stays left: rows keep increasing
    assert out.min() >= 0 and out.max() <= 15
    assert (out[:, :, :, -1] - out[:, :, :, 0]).min() < 15  # some image was zoomed in
    flat = batch_resized_crop(torch.full((4, 3, 8, 8), 0.25), 0.3,
                              torch.Generator().manual_seed(0))
    assert torch.allclose(flat, torch.full_like(flat, 0.25))


@pytest.mark.parametrize("name", ["none", "light", "strong"])
def test_every_policy_keeps_shape_dtype_and_is_reproducible(name):
    ops = policy(name, (16, 16, 3))
    mean, std = torch.full((3,), 0.5), torch.full((3,), 0.25)
    first = augment_batch(_images(), ops, mean, std, torch.Generator().manual_seed(7))
    again = augment_batch(_images(), ops, mean, std, torch.Generator().manual_seed(7))
    other = augment_batch(_images(), ops, mean, std, torch.Generator().manual_seed(8))
    assert first.shape == (8, 3, 16, 16) and first.dtype == torch.float32
    assert torch.equal(first, again)
    assert torch.isfinite(first).all() and first.abs().max() <= (1 - 0.5) / 0.25 + 1e-5
    assert torch.equal(first, other) == (name == "none")


def test_policies_follow_the_data():
    assert policy("light", (28, 28, 1), flip_ok=False) == Augment(flip=False, shift=2)
    assert policy("light", (32, 32, 3)).flip is True
    strong_photo = policy("strong", (96, 96, 3))
    assert strong_photo.crop_scale < 1 and strong_photo.jitter > 0 and strong_photo.shift == 0
    assert policy("strong", (28, 28, 1)).jitter == 0  # no colour to jitter


def test_rotate_zoom_against_rot90_and_identity():
    images = torch.rand(3, 2, 9, 9)
    quarter = rotate_zoom(images, torch.full((3,), 90.0), torch.ones(3))
    torch.testing.assert_close(quarter, torch.rot90(images, 1, dims=(2, 3)), atol=1e-5, rtol=0)
    same = rotate_zoom(images, torch.zeros(3), torch.ones(3))
    torch.testing.assert_close(same, images, atol=1e-6, rtol=0)


def test_rotate_zoom_magnifies_about_the_centre():
    image = torch.zeros(1, 1, 8, 8)
    image[..., 2:6, 2:6] = 1  # a centred 4×4 square
    zoomed = rotate_zoom(image, torch.zeros(1), torch.full((1,), 2.0))
    # the square now covers the image: inner pixels sample inside it, the outermost ring
    # samples a quarter pixel past its edge (bilinear: 0.75, and 0.75² at the corners)
    expected = torch.full_like(image, 0.75)
    expected[..., 1:7, 1:7] = 1
    expected[..., [0, 0, -1, -1], [0, -1, 0, -1]] = 0.75**2
    torch.testing.assert_close(zoomed, expected)


def test_batch_rotate_range_seed_and_black_corners():
    images = torch.ones(16, 1, 12, 12)
    first = batch_rotate(images, 15, torch.Generator().manual_seed(1))
    again = batch_rotate(images, 15, torch.Generator().manual_seed(1))
    assert torch.equal(first, again) and first.shape == images.shape
    assert first.min() >= 0 and first.max() <= 1 + 1e-6
    corners = first[:, 0, [0, 0, -1, -1], [0, -1, 0, -1]]  # (16, 4)
    assert (corners < 1).any(dim=1).float().mean() > 0.5  # turned images uncover a corner
