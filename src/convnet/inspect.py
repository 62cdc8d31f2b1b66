"""Looking inside a trained network: feature maps, Grad-CAM, and one output value worked out
by hand. Tensors only; `convnet.plots` draws them.

All functions take a normalised input batch of one image, (1, C, H, W), as the network sees
it, and run the layers in the spec's order (not `Network.forward`'s faster order), so every
map is the one the summary describes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from convnet.errors import ConvnetError
from convnet.layers import LayerInfo
from convnet.model import Network
from convnet.spec import Activation, BatchNorm, Conv, Pool, Whiten


@torch.no_grad()
def feature_maps(network: Network, x: torch.Tensor) -> list[tuple[LayerInfo, torch.Tensor]]:
    """Every layer's output for one image: (info, tensor of the layer's out_shape)."""
    was_training = network.training
    network.eval()
    outputs = [(info, out[0]) for info, out in network.forward_intermediates(x)]
    network.train(was_training)
    return outputs


def gradcam_layer(network: Network) -> int:
    """Index of the layer Grad-CAM looks at: the last one before the head whose maps are
    still larger than 1×1 (later maps have no "where" left to show)."""
    candidates = [i for i, info in enumerate(network.infos[: network.head_start])
                  if len(info.out_shape) == 3 and info.out_shape[1] * info.out_shape[2] > 1]
    if not candidates:
        raise ConvnetError("Grad-CAM needs a layer with feature maps larger than 1×1; this "
                           f"network has none. Received: spec {network.spec!r}.")
    return candidates[-1]


def gradcam(network: Network, x: torch.Tensor, class_index: int) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al., 2017) for one image and class: (H, W) in [0, 1].

    Each map of the chosen layer is weighted by the mean gradient of the class's logit over
    that map; the positive part of the weighted sum, upsampled to the input, shows where
    evidence for the class was found. All zeros when nothing spoke for it.
    """
    target = gradcam_layer(network)
    was_training = network.training
    network.eval()
    with torch.enable_grad():
        outputs = network.forward_intermediates(x.detach())
        kept = outputs[target][1]  # (1, K, h, w)
        logits = outputs[-1][1]  # (1, classes)
        # the gradient with respect to the maps only: the weights' .grad stay untouched
        (grads,) = torch.autograd.grad(logits[0, class_index], kept)
    network.train(was_training)
    maps, grads = kept.detach()[0], grads[0]  # (K, h, w) each
    weights = grads.mean(dim=(1, 2))  # (K,)
    cam = F.relu((weights[:, None, None] * maps).sum(0))  # (h, w)
    cam = F.interpolate(cam[None, None], size=x.shape[2:], mode="bilinear",
                        align_corners=False)[0, 0]  # (H, W)
    peak = cam.max()
    return cam / peak if peak > 0 else cam


@dataclass
class Arithmetic:
    """One value of a convolution's feature map, and what the next layers made of it."""

    layer: int  # 1-based spec position of the conv layer
    y: int
    x: int
    filter: int
    patch: torch.Tensor  # (C, k, k) the input under the filter (padding included)
    weights: torch.Tensor  # (C, k, k)
    bias: float
    products: torch.Tensor  # (C, k, k) patch * weights
    value: float  # products.sum() + bias
    actual: float  # the layer's real output at (filter, y, x)
    after: list[tuple[str, str]] = field(default_factory=list)  # (layer token, what happened)


def parse_at(text: str) -> tuple[int, int, int, int]:
    """``"LAYER:Y,X[,FILTER]"`` (the ``--at`` option) -> (layer, y, x, filter); filter
    defaults to 0.

    Raises:
        ConvnetError: for anything else.
    """
    try:
        layer_text, rest = text.split(":")
        numbers = [int(part) for part in rest.split(",")]
        if len(numbers) not in (2, 3):
            raise ValueError
        return int(layer_text), numbers[0], numbers[1], numbers[2] if len(numbers) == 3 else 0
    except ValueError:
        raise ConvnetError("--at must be LAYER:Y,X or LAYER:Y,X,FILTER with whole numbers, "
                           f"e.g. 1:10,12,3 (layer 1, row 10, column 12, filter 3). "
                           f"Received: {text!r}.") from None


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
    if index is None or not isinstance(network.infos[index].layer, Conv | Whiten):
        convs = [info.position for info in network.infos if isinstance(info.layer, Conv)]
        raise ConvnetError(f"--at names layer {layer}, which is not a convolution. Conv layers "
                           f"of this network: {convs}. Received: layer={layer}.")
    info = network.infos[index]
    filters, height, width = info.out_shape
    if not (0 <= y < height and 0 <= col < width and 0 <= filter_index < filters):
        raise ConvnetError(f"--at {layer}:{y},{col},{filter_index} is outside layer {layer}'s "
                           f"output {height}×{width}×{filters}: rows 0–{height - 1}, columns "
                           f"0–{width - 1}, filters 0–{filters - 1}.")
    outputs = feature_maps(network, x)
    inputs = x[0] if index == 0 else outputs[index - 1][1]  # (C, H, W) into the conv
    conv = network.body[index]
    pad, stride, kernel = conv.padding[0], conv.stride[0], conv.kernel_size[0]
    padded = F.pad(inputs, (pad,) * 4)  # zeros around, as the convolution pads
    top, left = y * stride, col * stride
    patch = padded[:, top : top + kernel, left : left + kernel]  # (C, k, k)
    weights = conv.weight[filter_index].detach()  # (C, k, k)
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
