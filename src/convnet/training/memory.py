"""Whether a training run fits in memory, estimated from the layer shapes before any
weight is allocated.

Why: an absurd image or batch size used to be found out by the operating system killing the
process after minutes, with no message. The estimate is simple and errs high: every layer's
output for a batch, kept for the backward pass, and its gradient (fp32); the resident uint8
training images; the weights with their gradients and two optimizer moments.
"""

from __future__ import annotations

import math

import torch

from convnet.errors import ConvnetError
from convnet.network import LayerInfo
from convnet.resources import available_bytes, human

FLOAT = 4  # bytes per fp32 value
HEADROOM = 0.9  # of the memory available, what a run may plan to use


def training_bytes(infos: list[LayerInfo], chw: tuple[int, int, int], batch_size: int,
                   images: int) -> tuple[int, int]:
    """(bytes of one step's activations, bytes of everything else) for a run on
    ``images`` training images of shape ``chw``."""
    activations = sum(math.prod(info.out_shape) for info in infos) + math.prod(chw)
    params = sum(info.params for info in infos)
    return 2 * FLOAT * batch_size * activations, 4 * FLOAT * params + images * math.prod(chw)


def check_fits(infos: list[LayerInfo], chw: tuple[int, int, int], batch_size: int,
               images: int, device: torch.device) -> None:
    """Raises ConvnetError, naming the figures, when the run cannot fit in memory."""
    available = available_bytes(device)
    if available is None:
        return
    step, rest = training_bytes(infos, chw, batch_size, images)
    if step + rest <= HEADROOM * available:
        return
    channels, height, width = chw
    fitting = int((HEADROOM * available - rest) // max(1, step // batch_size))
    fix = (f"Use batch_size={fitting} or less, or a smaller image_size." if fitting >= 1
           else "Use a smaller image_size, or a network with fewer weights.")
    raise ConvnetError(
        f"Training on {height}×{width}×{channels} images in batches of {batch_size} needs "
        f"about {human(step + rest)} of memory ({human(step)} per step) and {device.type} "
        f"has {human(available)} available. {fix}")
