"""Two conventions meet in convnet: people (and the texts, and image files) write an image as
H×W×C; torch computes on (C, H, W). Every conversion between them is one of these."""

from __future__ import annotations

import torch


def hwc_to_chw(shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """(H, W, C) -> (C, H, W), for shapes."""
    height, width, channels = shape
    return channels, height, width


def chw_to_hwc(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(C, H, W) -> (H, W, C), for shapes."""
    channels, height, width = shape
    return height, width, channels


def to_chw(pixels: torch.Tensor) -> torch.Tensor:
    """An image (H, W, C) as decoded -> (C, H, W), contiguous."""
    return pixels.permute(2, 0, 1).contiguous()
