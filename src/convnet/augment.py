"""Augmentation of whole batches on the training device: no per-image Python."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def batch_shift(images: torch.Tensor, max_shift: int, generator: torch.Generator | None = None
                ) -> torch.Tensor:
    """Move every image by its own random offset of up to ``max_shift`` pixels each way.

    Uncovered pixels become 0 (black for uint8 images), as if the canvas were padded.

    Args:
        images: (B, C, H, W), any dtype.
        max_shift: largest offset in pixels; 0 returns ``images`` unchanged.
    """
    if max_shift <= 0:
        return images
    batch, channels, height, width = images.shape
    padded = F.pad(images, (max_shift,) * 4)  # (B, C, H + 2s, W + 2s)
    offsets = torch.randint(0, 2 * max_shift + 1, (2, batch), device=images.device,
                            generator=generator)
    rows = offsets[0, :, None] + torch.arange(height, device=images.device)  # (B, H)
    cols = offsets[1, :, None] + torch.arange(width, device=images.device)  # (B, W)
    # Gather rows then columns: two cheap index_selects per batch instead of a loop.
    picked = padded.gather(2, rows[:, None, :, None].expand(batch, channels, height,
                                                             width + 2 * max_shift))
    return picked.gather(3, cols[:, None, None, :].expand(batch, channels, height, width))


def light_shift(image_size: int) -> int:
    """The shift used by ``--augment light``: about 1/14 of the side (2 px at 28×28)."""
    return max(1, round(image_size / 14))
