"""Layer descriptions -> torch modules, with the shape arithmetic the texts teach.

Shapes are tuples in torch's order: ``(C, H, W)`` for feature maps, ``(N,)`` for vectors.
`format_shape` writes them the texts' way, H×W×D.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from convnet.errors import SpecError
from convnet.spec import (
    Activation,
    BatchNorm,
    Conv,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool,
    Layer,
    Pool,
    Whiten,
)

Shape = tuple[int, ...]
_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}


@dataclass(frozen=True)
class LayerInfo:
    """One layer with everything the summary and the model need to know about it."""

    position: int | None  # 1-based token position in the spec; None if implied
    layer: Layer
    in_shape: Shape
    out_shape: Shape
    params: int
    macs: int  # multiply-adds for one image
    receptive_field: int | None  # side of the input window one output sees; None: all of it
    jump: int  # input pixels between neighbouring outputs

    @property
    def name(self) -> str:
        return self.layer.token() or "(flatten)"


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


def format_shape(shape: Shape) -> str:
    """``(32, 26, 26) -> '26×26×32'``; ``(128,) -> '128'``."""
    if len(shape) == 3:
        channels, height, width = shape
        return f"{height}×{width}×{channels}"
    return str(shape[0])


def conv_padding(layer: Conv) -> int:
    return (layer.kernel - 1) // 2 if layer.padding == "same" else layer.padding


def _slide(size: int, window: int, padding: int, stride: int, where: str, shape: Shape,
           network_input: Shape) -> int:
    """(W − F + 2P)/S + 1, rounded down as torch does; below 1 is an error."""
    out = (size - window + 2 * padding) // stride + 1
    if out < 1:
        raise SpecError(
            f"{where} does not fit its input {format_shape(shape)}: output size "
            f"(W − F + 2P)/S + 1 = ({size} − {window} + 2×{padding})/{stride} + 1 = "
            f"{(size - window + 2 * padding) / stride + 1:g}, below 1. Use fewer or smaller "
            f"pooling layers, padding (p1, psame), a smaller kernel, or a larger input. "
            f"Received: network input {format_shape(network_input)}."
        )
    return out


def _out_shape(layer: Layer, shape: Shape, where: str, network_input: Shape) -> Shape:
    def slide(size: int, window: int, padding: int, stride: int) -> int:
        return _slide(size, window, padding, stride, where, shape, network_input)

    match layer:
        case Conv(filters=f, kernel=k, stride=s):
            pad = conv_padding(layer)
            return (f, slide(shape[1], k, pad, s), slide(shape[2], k, pad, s))
        case Whiten(kernel=k):
            return (2 * shape[0] * k * k, slide(shape[1], k, 0, 1), slide(shape[2], k, 0, 1))
        case Pool(window=w):
            return (shape[0], slide(shape[1], w, 0, layer.step), slide(shape[2], w, 0, layer.step))
        case GlobalAvgPool():
            return (shape[0], 1, 1)
        case Flatten():
            return (_numel(shape),)
        case Dense(units=units):
            return (units,)
        case _:
            return shape


def _numel(shape: Shape) -> int:
    total = 1
    for size in shape:
        total *= size
    return total


def _cost(layer: Layer, in_shape: Shape, out_shape: Shape) -> tuple[int, int]:
    """(parameters, multiply-adds per image) of one layer."""
    match layer:
        case Conv(filters=f, kernel=k):
            weights = f * in_shape[0] * k * k
            return weights + f, weights * out_shape[1] * out_shape[2]
        case Whiten(kernel=k):  # the weights are fixed, not learned; the biases learn
            weights = out_shape[0] * in_shape[0] * k * k
            return weights + out_shape[0], weights * out_shape[1] * out_shape[2]
        case Dense(units=units):
            return in_shape[0] * units + units, in_shape[0] * units
        case BatchNorm():
            return 2 * in_shape[0], 0  # a scale and a shift per channel or unit
        case _:
            return 0, 0


def infer(layers: list[Layer], input_shape: Shape, positions: list[int | None]) -> list[LayerInfo]:
    """Walk the layers from an input shape ``(C, H, W)``, computing what each one produces.

    Raises:
        SpecError: if a layer would shrink a feature map below 1×1.
    """
    infos: list[LayerInfo] = []
    shape, field, jump = input_shape, 1, 1
    for layer, position in zip(layers, positions):
        where = f"Spec token {position} '{layer.token()}'" if position else f"'{layer.token()}'"
        out_shape = _out_shape(layer, shape, where, input_shape)
        if isinstance(layer, Conv | Whiten | Pool) and field is not None:
            window, stride = (layer.window, layer.step) if isinstance(layer, Pool) else (
                layer.kernel, getattr(layer, "stride", 1))
            field, jump = field + (window - 1) * jump, jump * stride
        elif isinstance(layer, GlobalAvgPool | Flatten | Dense):
            field = None
        params, macs = _cost(layer, shape, out_shape)
        infos.append(LayerInfo(position, layer, shape, out_shape, params, macs, field, jump))
        shape = out_shape
    return infos


def make_module(info: LayerInfo) -> nn.Module:
    """The torch module for one inferred layer."""
    layer, in_shape = info.layer, info.in_shape
    match layer:
        case Conv(filters=f, kernel=k, stride=s):
            return nn.Conv2d(in_shape[0], f, k, stride=s, padding=conv_padding(layer))
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
        case BatchNorm():
            return nn.BatchNorm2d(in_shape[0]) if len(in_shape) == 3 else nn.BatchNorm1d(
                in_shape[0])
        case Dropout(p=p):
            return ByteDropout(p)
        case Flatten():
            return nn.Flatten()
        case Dense(units=units):
            return nn.Linear(in_shape[0], units)
    raise AssertionError(f"no module for {layer!r}")
