"""The shape arithmetic the texts teach: what each layer makes of its input.

Shapes are tuples in torch's order: ``(C, H, W)`` for feature maps, ``(N,)`` for vectors.
`format_shape` writes them the texts' way, H×W×D. The output side of a convolution or
pooling window is (W − F + 2P)/S + 1; receptive fields grow by (k − 1)·jump per layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from convnet.errors import SpecError
from convnet.network.spec import (
    Add,
    BatchNorm,
    Conv,
    Dense,
    DepthwiseConv,
    Flatten,
    GlobalAvgPool,
    Layer,
    Pool,
    Skip,
    Whiten,
)

Shape = tuple[int, ...]


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


def conv_pads(layer: Conv | DepthwiseConv, height: int, width: int
              ) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) zero padding of a convolution on a height×width input.

    ``psame`` pads (k − 1)/2 on every side. ``ptf`` is TensorFlow's "same": the output is
    ceil(W/S), and the padding that takes, (ceil(W/S) − 1)·S + k − W, is split with the odd
    pixel at the bottom and right, as weights trained in TensorFlow expect.
    """
    if layer.padding == "tf":
        def split(size: int) -> tuple[int, int]:
            total = max((-(-size // layer.stride) - 1) * layer.stride + layer.kernel - size, 0)
            return total // 2, total - total // 2
        return (*split(height), *split(width))
    pad = (layer.kernel - 1) // 2 if layer.padding == "same" else layer.padding
    return pad, pad, pad, pad


def conv_filters(layer: Conv | DepthwiseConv, channels: int) -> int:
    """Output maps of a convolution on ``channels`` input channels."""
    return layer.filters if isinstance(layer, Conv) else channels * layer.multiplier


def conv_groups(layer: Conv | DepthwiseConv, channels: int) -> int:
    """Groups of channels a convolution's filters are split into (depthwise: every one)."""
    return layer.groups if isinstance(layer, Conv) else channels


def _slide(size: int, window: int, padding: int | tuple[int, int], stride: int, where: str,
           shape: Shape, network_input: Shape) -> int:
    """(W − F + 2P)/S + 1, rounded down as torch does; below 1 is an error. ``padding`` may
    be a (before, after) pair that differs (TensorFlow's same); 2P is then their sum."""
    both = sum(padding) if isinstance(padding, tuple) else 2 * padding
    out = (size - window + both) // stride + 1
    if out < 1:
        written = f"{both}" if isinstance(padding, tuple) else f"2×{padding}"
        raise SpecError(
            f"{where} does not fit its input {format_shape(shape)}: output size "
            f"(W − F + 2P)/S + 1 = ({size} − {window} + {written})/{stride} + 1 = "
            f"{(size - window + both) / stride + 1:g}, below 1. Use fewer or smaller "
            f"pooling layers, padding (p1, psame), a smaller kernel, or a larger input. "
            f"Received: network input {format_shape(network_input)}."
        )
    return out


def _out_shape(layer: Layer, shape: Shape, where: str, network_input: Shape) -> Shape:
    def slide(size: int, window: int, padding: int | tuple[int, int], stride: int) -> int:
        return _slide(size, window, padding, stride, where, shape, network_input)

    match layer:
        case Conv(kernel=k, stride=s) | DepthwiseConv(kernel=k, stride=s):
            _check_groups(layer, shape[0], where)
            top, bottom, left, right = conv_pads(layer, shape[1], shape[2])
            rows = top if top == bottom else (top, bottom)  # a pair only when uneven
            columns = left if left == right else (left, right)
            return (conv_filters(layer, shape[0]), slide(shape[1], k, rows, s),
                    slide(shape[2], k, columns, s))
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


def _check_groups(layer: Conv | DepthwiseConv, channels: int, where: str) -> None:
    groups = conv_groups(layer, channels)
    filters = conv_filters(layer, channels)
    if channels % groups or filters % groups:
        raise SpecError(f"{where} splits its channels into {groups} groups, which must divide "
                        f"both its {channels} input channels and its {filters} filters. Use "
                        f"a group count that divides both. Received: g{groups}.")


def _numel(shape: Shape) -> int:
    total = 1
    for size in shape:
        total *= size
    return total


def _cost(layer: Layer, in_shape: Shape, out_shape: Shape) -> tuple[int, int]:
    """(parameters, multiply-adds per image) of one layer."""
    match layer:
        case Conv(kernel=k) | DepthwiseConv(kernel=k):
            filters = out_shape[0]  # each sees its group's share of the input channels
            weights = filters * (in_shape[0] // conv_groups(layer, in_shape[0])) * k * k
            return weights + (filters if layer.bias else 0), weights * out_shape[1] * out_shape[2]
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
    kept: list[tuple[Shape, int | None]] = []  # what each open skip holds, and its field
    for layer, position in zip(layers, positions):
        where = f"Spec token {position} '{layer.token()}'" if position else f"'{layer.token()}'"
        out_shape = _out_shape(layer, shape, where, input_shape)
        if isinstance(layer, Skip):
            kept.append((shape, field))
        elif isinstance(layer, Add):
            skipped, skipped_field = kept.pop()
            if skipped != shape:
                raise SpecError(f"{where} adds maps of {format_shape(skipped)} (from its skip) "
                                f"to maps of {format_shape(shape)}: a residual connection "
                                "needs the same shape on both paths. Keep the stride 1 and "
                                "the filters equal to the skip's channels inside it.")
            # the sum sees what either path saw: the wider of the two windows
            field = None if None in (field, skipped_field) else max(field, skipped_field)
        if isinstance(layer, Conv | DepthwiseConv | Whiten | Pool) and field is not None:
            window, stride = (layer.window, layer.step) if isinstance(layer, Pool) else (
                layer.kernel, getattr(layer, "stride", 1))
            field, jump = field + (window - 1) * jump, jump * stride
        elif isinstance(layer, GlobalAvgPool | Flatten | Dense):
            field = None
        params, macs = _cost(layer, shape, out_shape)
        infos.append(LayerInfo(position, layer, shape, out_shape, params, macs, field, jump))
        shape = out_shape
    return infos
