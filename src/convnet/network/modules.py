"""Layer descriptions -> torch modules, and the modules of our own (byte-mask dropout, the
whitening layer, a convolution padded unevenly)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from convnet.errors import SpecError
from convnet.network.shapes import LayerInfo, conv_filters, conv_groups, conv_pads
from convnet.network.spec import (
    Activation,
    Add,
    BatchNorm,
    Conv,
    Dense,
    DepthwiseConv,
    Dropout,
    Flatten,
    GlobalAvgPool,
    Pool,
    Skip,
    Whiten,
)

_ACTIVATIONS = {"relu": nn.ReLU, "relu6": nn.ReLU6, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
                "gelu": nn.GELU}


class PaddedConv2d(nn.Conv2d):
    """A convolution with different zero padding on opposite sides (TensorFlow's "same" at
    stride 2 puts the odd pixel at the bottom and right), fixed when the network is built
    for its input size, so export sees a constant pad. The weights are named as in
    `nn.Conv2d`."""

    def __init__(self, *args, pads: tuple[int, int, int, int], **kwargs):
        super().__init__(*args, **kwargs)
        self.pads = pads  # (top, bottom, left, right)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom, left, right = self.pads
        return super().forward(F.pad(x, (left, right, top, bottom)))  # (B, C, H', W')


class ByteDropout(nn.Dropout):
    """Dropout whose CPU mask costs one random bit per 8, not one random number per element.

    torch draws each element of a CPU dropout mask from its generator one at a time, which made
    dropout a tenth of a small CNN's training step. Here every random 64-bit word gives eight
    bytes, and a byte below ``round(p * 256)`` drops its element: the drop rate is ``p``
    rounded to 1/256 (0.5 exactly, 0.3 as 0.3008) and kept values are scaled to keep the
    expectation. On other devices torch's own dropout is already fast and is used as is.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu":
            return super().forward(x)
        cutoff = round(self.p * 256)
        if cutoff >= 256:
            return torch.zeros_like(x)
        words = torch.empty((x.numel() + 7) // 8, dtype=torch.int64, device=x.device)
        words.random_(-(2**63), 2**63 - 1)  # the whole int64 range: all 64 bits random
        keep = words.view(torch.uint8)[: x.numel()].view(x.shape) >= cutoff  # x's shape
        return x * keep.to(x.dtype).mul_(256 / (256 - cutoff))


class Whitening(nn.Conv2d):
    """The ``whiten<k>`` layer: a k×k convolution whose filters `fit` sets from image
    patches and training leaves alone (only the bias learns).

    Filter pairs ±v/sqrt(λ + eps), for each eigenvector v and eigenvalue λ of the patches'
    covariance, turn every k×k patch into decorrelated values of about unit variance, so the
    next layers start from a well-conditioned input (the whitening of fast CIFAR-10 training
    recipes). eps keeps the near-zero-variance directions from being blown up into noise.
    """

    def __init__(self, channels: int, kernel: int):
        super().__init__(channels, 2 * channels * kernel * kernel, kernel)
        self.weight.requires_grad_(False)

    @torch.no_grad()
    def fit(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        """Set the filters from normalised images (N, C, H, W)."""
        patches = F.unfold(images.float(), self.kernel_size)  # (N, C·k·k, L)
        patches = patches.transpose(1, 2).reshape(-1, patches.shape[1]).double()  # (N·L, D)
        patches = patches - patches.mean(dim=0)
        covariance = patches.T @ patches / len(patches)  # (D, D)
        values, vectors = torch.linalg.eigh(covariance)  # ascending eigenvalues
        filters = (vectors / (values.clamp(min=0) + eps).sqrt()).T.flip(0)  # (D, D), largest 1st
        weight = torch.cat([filters, -filters])  # (2D, D)
        self.weight.copy_(weight.view_as(self.weight).to(self.weight.dtype))
        self.bias.zero_()


class SkipStart(nn.Identity):
    """Marks where a residual connection starts; `Network` keeps its input for `SkipAdd`."""


class SkipAdd(nn.Module):
    """Adds the input its `SkipStart` kept: ``forward(x, kept) = x + kept``."""

    def forward(self, x: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
        return x + kept  # (B, C, H, W) + (B, C, H, W)


def make_module(info: LayerInfo) -> nn.Module:
    """The torch module for one inferred layer."""
    layer, in_shape = info.layer, info.in_shape
    match layer:
        case Conv(kernel=k, stride=s) | DepthwiseConv(kernel=k, stride=s):
            channels = in_shape[0]
            pads = conv_pads(layer, in_shape[1], in_shape[2])
            sizes = (channels, conv_filters(layer, channels), k)
            options = dict(stride=s, groups=conv_groups(layer, channels), bias=layer.bias)
            if len(set(pads)) == 1:  # the same on every side: torch pads inside the conv
                return nn.Conv2d(*sizes, padding=pads[0], **options)
            return PaddedConv2d(*sizes, pads=pads, **options)
        case Whiten(kernel=k):
            return Whitening(in_shape[0], k)
        case Pool(kind="max", window=w):
            return nn.MaxPool2d(w, stride=layer.step)
        case Pool(kind="avg", window=w):
            return nn.AvgPool2d(w, stride=layer.step)
        case GlobalAvgPool():
            return nn.AdaptiveAvgPool2d(1)
        case Activation(name=name):
            return _ACTIVATIONS[name]()
        case BatchNorm(eps=eps):
            norm = nn.BatchNorm2d if len(in_shape) == 3 else nn.BatchNorm1d
            return norm(in_shape[0], eps=eps)
        case Dropout(p=p):
            return ByteDropout(p)
        case Flatten():
            return nn.Flatten()
        case Dense(units=units):
            return nn.Linear(in_shape[0], units)
        case Skip():
            return SkipStart()
        case Add():
            return SkipAdd()
    raise SpecError(f"layer must be one of the spec's layer kinds (conv, pool, norm, dropout, "
                    f"flatten, fc, skip, add, ...). Received: layer={layer!r}.")
