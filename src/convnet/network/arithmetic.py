"""One value of a convolution's feature map worked out by hand: the patch under the filter,
the weights, their products, the sum plus bias, then what batch norm, the activation and
pooling made of it. The numbers are the network's own (`feature_maps`), not a re-derivation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from convnet.errors import ConvnetError
from convnet.network.inside import feature_maps
from convnet.network.model import Network
from convnet.network.modules import PaddedConv2d
from convnet.network.spec import CONVOLUTIONS, Activation, BatchNorm, Pool, Whiten


@dataclass
class Arithmetic:
    """One value of a convolution's feature map, and what the next layers made of it."""

    layer: int  # 1-based spec position of the conv layer
    y: int
    x: int
    filter: int
    patch: torch.Tensor  # (c, k, k) the input under the filter (padding included): the
    # c channels of the filter's group (all C, or one for a depthwise convolution)
    weights: torch.Tensor  # (c, k, k)
    bias: float
    products: torch.Tensor  # (c, k, k) patch * weights
    value: float  # products.sum() + bias
    actual: float  # the layer's real output at (filter, y, x)
    after: list[tuple[str, str]] = field(default_factory=list)  # (layer token, what happened)


def parse_at(text: str) -> tuple[int, int, int, int]:
    """``"LAYER:Y,X[,FILTER]"`` (``convnet explain --at``) -> (layer, y, x, filter); filter
    defaults to 0.

    Raises:
        ConvnetError: for anything else.
    """
    wrong = ConvnetError("at must be LAYER:Y,X or LAYER:Y,X,FILTER with whole numbers, "
                         f"e.g. 1:10,12,3 (layer 1, row 10, column 12, filter 3). "
                         f"Received: at={text!r}.")
    try:
        layer_text, rest = text.split(":")
        numbers = [int(part) for part in rest.split(",")]
        layer = int(layer_text)
    except ValueError:
        raise wrong from None
    if len(numbers) not in (2, 3):
        raise wrong
    return layer, numbers[0], numbers[1], numbers[2] if len(numbers) == 3 else 0


def explain_at(network: Network, x: torch.Tensor, layer: int, y: int, col: int,
               filter_index: int = 0) -> Arithmetic:
    """The dot product behind one value of a convolution layer's feature map.

    Args:
        layer: the conv layer's 1-based position in the spec (as `convnet summary` numbers it).
        y, col: row and column in that layer's output map (0-based).
        filter_index: which filter (output map), 0-based.

    Raises:
        ConvnetError: if ``layer`` is not a convolution or the position is outside the map.
    """
    index = next((i for i, info in enumerate(network.infos) if info.position == layer), None)
    if index is None or not isinstance(network.infos[index].layer, (*CONVOLUTIONS, Whiten)):
        convs = [info.position for info in network.infos
                 if isinstance(info.layer, CONVOLUTIONS)]
        raise ConvnetError(f"Layer {layer} is not a convolution. Conv layers "
                           f"of this network: {convs}. Received: layer={layer}.")
    info = network.infos[index]
    filters, height, width = info.out_shape
    if not (0 <= y < height and 0 <= col < width and 0 <= filter_index < filters):
        raise ConvnetError(f"Position {y},{col} of filter {filter_index} is outside layer "
                           f"{layer}'s output {height}×{width}×{filters}: rows 0–{height - 1}, "
                           f"columns 0–{width - 1}, filters 0–{filters - 1}.")
    outputs = feature_maps(network, x)
    inputs = x[0] if index == 0 else outputs[index - 1][1]  # (C, H, W) into the conv
    conv = network.body[index]
    stride, kernel = conv.stride[0], conv.kernel_size[0]
    pad_top, pad_bottom, pad_left, pad_right = conv.pads if isinstance(conv, PaddedConv2d) \
        else (conv.padding[0],) * 2 + (conv.padding[1],) * 2
    padded = F.pad(inputs, (pad_left, pad_right, pad_top, pad_bottom))  # as the conv pads
    per_group = conv.weight.shape[1]  # the input channels each filter sees
    first = filter_index // (filters // conv.groups) * per_group  # its group's first one
    top, left = y * stride, col * stride
    patch = padded[first : first + per_group, top : top + kernel,
                   left : left + kernel]  # (c, k, k)
    weights = conv.weight[filter_index].detach()  # (c, k, k)
    products = patch * weights
    bias = float(conv.bias[filter_index].detach()) if conv.bias is not None else 0.0
    value = float(products.double().sum()) + bias
    actual = float(outputs[index][1][filter_index, y, col])
    result = Arithmetic(layer, y, col, filter_index, patch, weights, bias, products, value,
                        actual)
    result.after = _what_followed(network, outputs, index, filter_index, y, col)
    return result


def _what_followed(network: Network, outputs, index: int, channel: int, y: int,
                   col: int) -> list[tuple[str, str]]:
    """Follow one value through the activations and the first pooling after its conv."""
    steps = []
    value = float(outputs[index][1][channel, y, col])
    for later in range(index + 1, len(network.infos)):
        info = network.infos[later]
        out = outputs[later][1]
        if isinstance(info.layer, Activation):
            value = float(out[channel, y, col])
            steps.append((info.name, f"{info.layer.name}(value) = {value:.4f}"))
        elif isinstance(info.layer, Pool):
            step = info.layer.step
            window = outputs[later - 1][1][channel]  # the pool's input map (h, w)
            row, column = y // step, col // step
            if row >= out.shape[1] or column >= out.shape[2]:
                steps.append((info.name, "this position falls outside every pooling window"))
                break
            cells = window[row * step : row * step + info.layer.window,
                           column * step : column * step + info.layer.window]
            verb = "largest" if info.layer.kind == "max" else "mean"
            steps.append((info.name, f"{verb} of the {info.layer.window}×{info.layer.window} "
                          f"window {_fmt(cells)} = {float(out[channel, row, column]):.4f} "
                          f"at ({row}, {column})"))
            break
        elif isinstance(info.layer, BatchNorm):
            value = float(out[channel, y, col])
            steps.append((info.name, f"normalised and rescaled: {value:.4f}"))
        else:
            break
    return steps


def _fmt(cells: torch.Tensor) -> str:
    rows = ["[" + ", ".join(f"{float(v):.2f}" for v in row) + "]" for row in cells]
    return "[" + ", ".join(rows) + "]"
