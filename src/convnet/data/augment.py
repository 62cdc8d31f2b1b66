"""Augmentation of whole batches on the training device: no per-image Python.

Every random choice comes from one ``torch.Generator``, so a seed reproduces a run. The
ops are written here in a few tensor lines each rather than taken from kornia: they run on
uint8-resident data without a per-op dispatch layer, and draw from our generator.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from convnet.data.pixels import is_nhwc, normalize


@dataclass(frozen=True)
class Augment:
    """Which ops run and how hard; ``Augment()`` does nothing."""

    flip: bool = False  # mirror left-right with probability 1/2
    shift: int = 0  # translate by up to this many pixels each way (zero padding)
    crop_scale: float = 1.0  # random resized crop keeping at least this fraction of the area
    rotate: float = 0.0  # rotate by up to this many degrees each way, and scale by 1 ± rotate/100
    jitter: float = 0.0  # brightness/contrast/saturation factors drawn from 1 ± jitter
    cutout: int = 0  # side of a square set to the mean colour, anywhere in the image

    def to_dict(self) -> dict:
        return asdict(self)


def policy(name: str, input_shape: tuple[int, int, int], flip_ok: bool = True) -> Augment:
    """The ops behind ``--augment none|light|strong`` for an input of (H, W, C).

    light: shifts of ~1/14 of the side (2 px at 28, 32) and flips where the data allows.
    strong: 1/8-side shifts (a random resized crop from 64 px up), flips, colour jitter for
    RGB, and cutout of half the side.
    """
    height, width, channels = input_shape
    side = min(height, width)
    if name == "none":
        return Augment()
    if name == "light":
        return Augment(flip=flip_ok, shift=max(1, round(side / 14)))
    large = side >= 64
    return Augment(flip=flip_ok, shift=0 if large else max(1, round(side / 8)),
                   crop_scale=0.35 if large else 1.0,
                   jitter=0.25 if channels == 3 else 0.0, cutout=max(1, side // 2))


def batch_shift(images: torch.Tensor, max_shift: int, generator: torch.Generator | None = None,
                flip: bool = False) -> torch.Tensor:
    """Move every image by its own random offset of up to ``max_shift`` pixels each way, and
    with ``flip`` mirror a random half of them in the same pass.

    Uncovered pixels become 0, as if the canvas were padded. One gather per batch does it
    all, which is several times faster than padding, cropping and flipping one by one.

    Args:
        images: (B, C, H, W), any dtype.
        max_shift: largest offset in pixels; 0 with no flip returns ``images`` unchanged.
    """
    if max_shift <= 0:
        return batch_flip(images, generator) if flip else images
    batch, channels, height, width = images.shape
    padded_width = width + 2 * max_shift
    offsets = torch.randint(0, 2 * max_shift + 1, (2, batch), device=images.device,
                            generator=generator)
    rows = offsets[0, :, None] + torch.arange(height, device=images.device)  # (B, H)
    cols = offsets[1, :, None] + torch.arange(width, device=images.device)  # (B, W)
    if flip:
        mirrored = torch.rand(batch, device=images.device, generator=generator) < 0.5
        cols = torch.where(mirrored[:, None], cols.flip(1), cols)
    flat = rows[:, :, None] * padded_width + cols[:, None, :]  # (B, H, W) into the canvas
    if is_nhwc(images):  # gather whole pixels and stay channels-last
        canvas = F.pad(images.permute(0, 2, 3, 1), (0, 0) + (max_shift,) * 4)  # (B, H', W', C)
        flat = flat.reshape(batch, height * width, 1).expand(batch, height * width, channels)
        picked = canvas.reshape(batch, -1, channels).gather(1, flat)  # (B, H*W, C)
        return picked.reshape(batch, height, width, channels).permute(0, 3, 1, 2)
    padded = F.pad(images, (max_shift,) * 4)  # (B, C, H + 2s, W + 2s)
    flat = flat.reshape(batch, 1, height * width).expand(batch, channels, height * width)
    picked = padded.reshape(batch, channels, -1).gather(2, flat)  # (B, C, H*W)
    return picked.reshape(batch, channels, height, width)


def batch_flip(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror a random half of the batch left to right. (B, C, H, W) -> same."""
    mask = torch.rand(images.shape[0], device=images.device, generator=generator) < 0.5
    return torch.where(mask[:, None, None, None], images.flip(3), images)


def batch_resized_crop(images: torch.Tensor, min_scale: float,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """Crop a random box (area ``min_scale``..1, aspect 3/4..4/3) and resize it back.

    Args:
        images: float (B, C, H, W).
    """
    batch, device = images.shape[0], images.device
    area = torch.empty(batch, device=device).uniform_(min_scale, 1.0, generator=generator)
    log_ratio = torch.empty(batch, device=device).uniform_(math.log(3 / 4), math.log(4 / 3),
                                                           generator=generator)
    ratio = log_ratio.exp()
    sx = (area * ratio).sqrt().clamp(max=1.0)  # box width as a fraction of the image
    sy = (area / ratio).sqrt().clamp(max=1.0)
    tx = (torch.rand(batch, device=device, generator=generator) * 2 - 1) * (1 - sx)
    ty = (torch.rand(batch, device=device, generator=generator) * 2 - 1) * (1 - sy)
    zero = torch.zeros_like(sx)
    theta = torch.stack([torch.stack([sx, zero, tx], 1),
                         torch.stack([zero, sy, ty], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)  # (B, H, W, 2)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection",
                         align_corners=False)


def rotate_zoom(images: torch.Tensor, degrees: torch.Tensor, zoom: torch.Tensor) -> torch.Tensor:
    """Rotate image i by ``degrees[i]`` counter-clockwise (as shown, row 0 on top) and
    magnify it ``zoom[i]`` times, about its centre; uncovered pixels become 0.

    float (B, C, H, W) -> same.
    """
    radians = degrees * (math.pi / 180)
    cos, sin = radians.cos() / zoom, radians.sin() / zoom  # output -> input coordinates
    zero = torch.zeros_like(cos)
    # x runs right and y down: this matrix turns the picture counter-clockwise on screen
    theta = torch.stack([torch.stack([cos, -sin, zero], 1),
                         torch.stack([sin, cos, zero], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)  # (B, H, W, 2)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False)


def batch_rotate(images: torch.Tensor, degrees: float,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Rotate each image by up to ``degrees`` each way and zoom it by up to ``degrees``
    percent (small rotations and scale changes: handwriting varies both).

    Args:
        images: float (B, C, H, W) on the 0..1 scale.
    """
    batch, device = images.shape[0], images.device
    angle = torch.empty(batch, device=device).uniform_(-degrees, degrees, generator=generator)
    zoom = torch.empty(batch, device=device).uniform_(1 - degrees / 100, 1 + degrees / 100,
                                                      generator=generator)
    return rotate_zoom(images, angle, zoom)


def batch_jitter(images: torch.Tensor, strength: float,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Random brightness, contrast and (for RGB) saturation per image, on the 0..1 scale."""
    batch, channels = images.shape[:2]

    def factors() -> torch.Tensor:  # (B, 1, 1, 1) in [1 - strength, 1 + strength]
        return torch.empty(batch, 1, 1, 1, device=images.device).uniform_(
            1 - strength, 1 + strength, generator=generator)

    images = images * factors()
    gray = images.mean(1, keepdim=True)  # (B, 1, H, W)
    images = (images - gray.mean((2, 3), keepdim=True)) * factors() + \
        gray.mean((2, 3), keepdim=True)
    if channels == 3:
        gray = images.mean(1, keepdim=True)
        images = gray + (images - gray) * factors()
    return images.clamp(0, 1)


def batch_cutout(images: torch.Tensor, side: int, generator: torch.Generator | None = None
                 ) -> torch.Tensor:
    """Zero a ``side``×``side`` square (clipped at the border) at a random centre per image."""
    batch, _, height, width = images.shape
    cy = torch.randint(0, height, (batch, 1), device=images.device, generator=generator)
    cx = torch.randint(0, width, (batch, 1), device=images.device, generator=generator)
    rows = (torch.arange(height, device=images.device) - cy + side // 2)  # (B, H)
    cols = (torch.arange(width, device=images.device) - cx + side // 2)  # (B, W)
    inside = ((rows >= 0) & (rows < side))[:, :, None] & ((cols >= 0) & (cols < side))[:, None]
    return images.masked_fill(inside[:, None], 0.0)  # (B, 1, H, W) mask over channels


def augment_batch(images: torch.Tensor, ops: Augment, mean: torch.Tensor, std: torch.Tensor,
                  generator: torch.Generator | None = None,
                  memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """uint8 (B, C, H, W) -> augmented, normalised float32 (B, C, H, W) in ``memory_format``.

    Cutout runs after normalisation, so the square holds the dataset's mean colour.
    """
    # Change the layout while the pixels are 1 byte, not 4: the ops below keep it.
    images = images.contiguous(memory_format=memory_format)
    flip_now = ops.flip and ops.crop_scale >= 1  # folded into the shift's gather
    images = batch_shift(images, ops.shift, generator, flip=flip_now)  # uint8, black padding
    if ops.crop_scale >= 1 and ops.jitter <= 0 and ops.rotate <= 0:  # in place, no temporaries
        x = normalize(images, mean, std)
    else:
        x = images.float() / 255  # (B, C, H, W) in 0..1
        if ops.crop_scale < 1:
            x = batch_resized_crop(x, ops.crop_scale, generator)
        if ops.rotate > 0:
            x = batch_rotate(x, ops.rotate, generator)
        if ops.flip and not flip_now:
            x = batch_flip(x, generator)
        if ops.jitter > 0:
            x = batch_jitter(x, ops.jitter, generator)
        x = (x - mean[:, None, None]) / std[:, None, None]
    if ops.cutout > 0:
        x = batch_cutout(x, ops.cutout, generator)
    return x.contiguous(memory_format=memory_format)  # a no-op unless an op changed layout
