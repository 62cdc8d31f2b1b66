"""EfficientNet-Lite0's ImageNet features of any images: the body's output averaged over
its positions, one 1280-number vector per image. Shared by the suspect probes and the
near-duplicate finder, and cached (`convnet.training.finetune.features`) a chunk at a time, so
the second use of the same images costs a read, and memory stays bounded."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from convnet import extras
from convnet.errors import ConvnetError
from convnet.network import Network, build
from convnet.network.efficientnet import SMALLEST
from convnet.training.finetune import Start, features, load_into
from convnet.training.pretrained import IMAGENET_ARCH, SOURCES, imagenet_start
from convnet.training.setup import pick_device

CHUNK = 2048  # images per cached feature block
HEAD = 1000  # the ImageNet head the body is built with: the same spec, the same cache key


def installed() -> bool:
    """Whether the ImageNet weights (the ``pretrained`` extra) are installed."""
    return extras.installed("pretrained", (SOURCES[IMAGENET_ARCH].module,))


def pooled(fetch: Callable[[Sequence[int]], torch.Tensor], count: int,
           progress: Callable[[int, int], None] | None = None, device: str = "auto"
           ) -> torch.Tensor:
    """(count, 1280) features of RGB uint8 images, ``fetch(rows)`` giving (n, 3, H, W).

    Raises:
        ConvnetError: without the pretrained extra.
    """
    start = imagenet_start()  # the weights, read once
    network = _body(tuple(fetch([0]).shape[1:]), start)
    place = pick_device(device)
    network.to(place)
    parts = []
    for begin in range(0, count, CHUNK):
        images = fetch(range(begin, min(begin + CHUNK, count)))  # (n, 3, H, W)
        found = features(network, images, start.normalization,
                         f"{start.identity}:{network.spec}", place)  # (n, 1280, h, w)
        parts.append(found.mean((2, 3)))
        if progress:
            progress(min(begin + CHUNK, count), count)
    return torch.cat(parts)


def _body(chw: tuple[int, int, int], start: Start) -> Network:
    channels, height, width = chw
    if channels != 3 or min(height, width) < SMALLEST:
        raise ConvnetError(f"ImageNet features need RGB images of {SMALLEST} px or more. "
                           f"Received: images of (channels, height, width) {chw}.")
    network = build(IMAGENET_ARCH, (height, width, 3), HEAD)
    load_into(network, start)
    return network
