"""Layer descriptions -> torch modules, with the shape arithmetic the texts teach.

Shapes are tuples in torch's order: ``(C, H, W)`` for feature maps, ``(N,)`` for vectors.
`format_shape` writes them the texts' way, H×W×D.
"""

from __future__ import annotations

from dataclasses import dataclass

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
)

Shape = tuple[int, ...]
_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


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
        if isinstance(layer, Conv | Pool) and field is not None:
            window, stride = (layer.kernel, layer.stride) if isinstance(layer, Conv) else (
                layer.window, layer.step)
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
            return nn.Dropout(p)
        case Flatten():
            return nn.Flatten()
        case Dense(units=units):
            return nn.Linear(in_shape[0], units)
    raise AssertionError(f"no module for {layer!r}")
