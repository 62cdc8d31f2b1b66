"""Pixels as the network receives them: memory layout and the per-channel normalisation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


def is_nhwc(images: torch.Tensor) -> bool:
    """Multi-channel images laid out channels-last in memory."""
    return images.shape[1] > 1 and images.is_contiguous(memory_format=torch.channels_last)


def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float32 with zero mean and unit std per channel, same layout.

    Channels-last input is worked on as (B, H, W, C) so the per-channel constants broadcast
    along the contiguous last axis, which is several times faster than across strides.
    """
    if is_nhwc(images):
        x = images.permute(0, 2, 3, 1).to(torch.float32, copy=True)  # (B, H, W, C), ours
        x = x.div_(255).sub_(mean).div_(std)
        return x.permute(0, 3, 1, 2)
    x = images.to(torch.float32, copy=True)  # a fresh tensor, so the in-place ops are safe
    return x.div_(255).sub_(mean[:, None, None]).div_(std[:, None, None])


@dataclass(frozen=True)
class Normalization:
    """Per-channel mean and std on the 0..1 scale, measured on the training images."""

    mean: torch.Tensor  # (C,) float32
    std: torch.Tensor  # (C,) float32

    @classmethod
    def of(cls, images: torch.Tensor) -> Normalization:
        """Measured on uint8 images (N, C, H, W)."""
        # float64 sums over chunks: a float copy of the whole set would take 8× its memory
        total = torch.zeros(images.shape[1], dtype=torch.float64)
        squares = torch.zeros(images.shape[1], dtype=torch.float64)
        for chunk in images.split(4096):
            scaled = chunk.double() / 255  # (b, C, H, W)
            total += scaled.sum(dim=(0, 2, 3))
            squares += scaled.square().sum(dim=(0, 2, 3))
        count = images.shape[0] * images.shape[2] * images.shape[3]
        mean = total / count  # (C,)
        variance = (squares - count * mean.square()) / max(count - 1, 1)  # unbiased, as std()
        std = variance.clamp(min=0).sqrt().clamp(min=1e-3)  # (C,); a blank channel stays finite
        return cls(mean.float(), std.float())

    def to(self, device: torch.device | str) -> Normalization:
        return Normalization(self.mean.to(device), self.std.to(device))

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W) -> normalised float32 (B, C, H, W), same memory layout."""
        return normalize(images, self.mean, self.std)

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "scale": 255}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Normalization:
        return cls(torch.tensor(values["mean"], dtype=torch.float32),
                   torch.tensor(values["std"], dtype=torch.float32))
