"""Data held in memory (the built-in sets, the official MNIST and CIFAR-10 files) at another
image size, as a folder is decoded at one: ``image_size`` means the same for every kind of
data, and a plan under a short budget can train on smaller images than the data's own.

The images are resized as a file is: cropped to the new aspect ratio at the centre (or
letterboxed in black, ``resize="pad"``), then resampled by antialiased bilinear
interpolation, which is what Pillow's bilinear filter does when it shrinks, so a file given
to `predict` and an image of the set at the same size look alike to the network.
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F

from convnet.data.dataset import Dataset, Split
from convnet.data.preprocess import Preprocess
from convnet.errors import ConvnetError
from convnet.resources import available_bytes, human

HEADROOM = 0.5  # of the memory available, what the resampled images may take: training
# needs the rest (`convnet.training.memory` checks the run itself)


def sized(dataset: Dataset, image_size: int | None = None, resize: str = "crop",
          preprocess: Preprocess | None = None) -> Dataset:
    """``dataset`` at ``preprocess``'s height and width, else ``image_size`` square; the
    same object where neither is given or the images already have that size."""
    if preprocess is not None:
        target, resize = (preprocess.height, preprocess.width), preprocess.resize
    elif image_size is not None:
        target = (image_size, image_size)
    else:
        return dataset
    if dataset.input_shape[:2] == target:
        return dataset
    _check_fits(dataset, target)

    def split(part: Split | None) -> Split | None:
        return None if part is None else Split(resized(part.images, target, resize),
                                               part.labels)

    return replace(dataset, train=split(dataset.train), val=split(dataset.val),
                   test=split(dataset.test), source=f"{dataset.source}; resized to "
                   f"{target[0]}×{target[1]} px ({resize})")


def _check_fits(dataset: Dataset, size: tuple[int, int]) -> None:
    """Raises ConvnetError, naming the figures, where the resampled images would not fit
    in the memory left (they are held beside the originals while they are made)."""
    images = sum(len(part) for part in (dataset.train, dataset.val, dataset.test)
                 if part is not None)
    needed = images * dataset.input_shape[2] * size[0] * size[1]  # uint8
    available = available_bytes("cpu")
    if available is None or needed <= HEADROOM * available:
        return
    raise ConvnetError(
        f"image_size={size[0]} makes the {images:,} images of data={dataset.name!r} take "
        f"{human(needed)} in memory, and {human(available)} is available. Use a smaller "
        "image_size, or export the data to a folder (`convnet datasets export`), which is "
        "decoded to a memory-mapped cache on disk.")


def resized(images: torch.Tensor, size: tuple[int, int], resize: str = "crop"
            ) -> torch.Tensor:
    """uint8 (N, C, H, W) -> uint8 (N, C, h, w) for ``size`` (h, w), in the input's memory
    layout: cropped at the centre to the new aspect ratio and resampled, or (``pad``)
    resampled to fit inside it and letterboxed in black, as `convnet.data.preprocess` does
    a file."""
    layout = torch.channels_last if images.shape[1] > 1 and \
        images.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    height, width = images.shape[-2:]
    aspect = size[1] / size[0]
    if resize == "crop":
        keep_h, keep_w = min(height, round(width / aspect)), min(width, round(height * aspect))
        top, left = (height - keep_h) // 2, (width - keep_w) // 2
        images = images[..., top:top + keep_h, left:left + keep_w]  # (N, C, H', W')
        inner = size
    else:  # the whole image inside the frame
        scale = min(size[0] / height, size[1] / width)
        inner = (min(size[0], round(height * scale)), min(size[1], round(width * scale)))
    out = torch.zeros((images.shape[0], images.shape[1], *size), dtype=torch.uint8
                      ).contiguous(memory_format=layout)  # (N, C, h, w), black bars
    top, left = round((size[0] - inner[0]) / 2), round((size[1] - inner[1]) / 2)
    # on the uint8 pixels themselves (torch has a kernel for them): no float copy of the
    # set, which would take four times the resampled images' memory
    out[:, :, top:top + inner[0], left:left + inner[1]] = F.interpolate(
        images.contiguous(memory_format=layout), size=inner, mode="bilinear",
        antialias=True, align_corners=False)  # (N, C, *inner)
    return out
