"""The network: a spec string and an input shape -> a torch module with named seams."""

from __future__ import annotations

import re

import torch
from torch import nn

from convnet.axes import hwc_to_chw
from convnet.errors import ConvnetError
from convnet.network.modules import SkipAdd, SkipStart, Whitening, make_module
from convnet.network.presets import resolve_arch, spec_for
from convnet.network.shapes import LayerInfo, infer
from convnet.network.spec import (
    Activation,
    Add,
    Dense,
    Flatten,
    Layer,
    Pool,
    Skip,
    format_spec,
    parse_spec,
    resolve,
)
from convnet.resources import available_bytes, human


def parse_input_shape(text: str | tuple[int, ...]) -> tuple[int, int, int]:
    """``"28x28x1"`` (H×W×C, as the texts write it) or ``"28x28"`` (one channel) -> (H, W, C).

    Raises:
        ConvnetError: for anything that is not two or three positive integers.
    """
    if isinstance(text, tuple | list):
        parts = [str(part) for part in text]
    else:
        parts = re.split(r"\s*[x×,]\s*", str(text).strip().lower())
    if len(parts) == 2:
        parts.append("1")
    if len(parts) != 3 or not all(part.isdigit() and int(part) > 0 for part in parts):
        raise ConvnetError(
            "The input shape must be HxWxC with positive integers, e.g. 28x28x1 or 32x32x3. "
            f"Received: {text!r}."
        )
    height, width, channels = (int(part) for part in parts)
    return height, width, channels


def _positions(resolved: list[Layer], written: int) -> list[int | None]:
    """1-based spec positions; None for the implied flatten and an appended output layer."""
    positions: list[int | None] = []
    counter = 0
    for index, layer in enumerate(resolved):
        implied = isinstance(layer, Flatten) and layer.implied
        appended = index == len(resolved) - 1 and isinstance(layer, Dense) and counter == written
        if implied or appended:
            positions.append(None)
        else:
            counter += 1
            positions.append(counter)
    return positions


_NON_DECREASING = ("relu", "tanh", "sigmoid")  # not gelu: it dips below zero before rising


def run_order(layers: list[Layer]) -> list[int]:
    """The order `Network.forward` runs the layers in: an activation followed by max pooling
    runs after the pool instead.

    The swap is exact, values and gradients: relu, tanh and sigmoid never decrease, so
    max(f(a), f(b)) = f(max(a, b)), and the pool picks the same element either way. Run
    second, the activation and its backward touch a quarter of the values (maxpool2).
    """
    order = list(range(len(layers)))
    for i in range(len(order) - 1):
        first, second = layers[order[i]], layers[order[i + 1]]
        monotonic = isinstance(first, Activation) and first.name in _NON_DECREASING
        if monotonic and isinstance(second, Pool) and second.kind == "max":
            order[i], order[i + 1] = order[i + 1], order[i]
    return order


class Network(nn.Module):
    """A CNN assembled from a spec.

    ``forward_features`` runs the layers that see feature maps, ``forward_head`` the rest
    (flatten, fully connected), and ``forward_intermediates`` returns every layer's output
    in the spec's order, so visualisation and export work the same way for every network.
    ``forward`` gives the same logits a little faster (see `run_order`).
    """

    def __init__(self, spec: str, input_shape: tuple[int, int, int], num_classes: int):
        super().__init__()
        written = parse_spec(spec_for(spec))
        self.layers = resolve(written, num_classes)
        self.spec = format_spec(self.layers)
        self.input_shape = input_shape  # (H, W, C)
        self.num_classes = num_classes
        self.infos: list[LayerInfo] = infer(self.layers, hwc_to_chw(input_shape),
                                            _positions(self.layers, len(written)))
        _check_weights_fit(self.spec, input_shape, self.infos)
        self.body = nn.Sequential(*(make_module(info) for info in self.infos))
        # The head starts at the first layer that works on vectors (always a Flatten).
        self.head_start = next(i for i, layer in enumerate(self.layers)
                               if isinstance(layer, Flatten))
        # swaps never cross the flatten (activation and pool both act on feature maps),
        # so the order splits at head_start like the layers do
        self._order = run_order(self.layers)
        self._last_activation = _last_activation(self.layers, self._order[:-1])
        self.frozen_statistics = False  # `freeze_batchnorm`
        self.frozen_layers = 0  # `freeze_layers`
        self._frozen_steps = 0  # how many of _order's first steps run without gradients

    def _repr_html_(self) -> str:
        """In a notebook: the summary table (layers, shapes, parameters, multiply-adds,
        receptive fields) and the texts' comparison with a dense network."""
        from convnet.network.costs import summary_of

        return summary_of(self)._repr_html_()

    def freeze_batchnorm(self, frozen: bool = True) -> None:
        """Keep every batch norm in eval mode, even while training: it normalises with its
        trained statistics and leaves them as they are (its scale and shift still learn).
        Fine-tuning on small batches needs this: their statistics are too noisy."""
        self.frozen_statistics = frozen
        self.train(self.training)

    def freeze_layers(self, count: int) -> None:
        """Keep the first ``count`` layers (as `convnet summary` numbers them) as they are:
        no gradients, batch norm in eval mode, and run under ``no_grad`` while training,
        so a step costs their forward pass only (the early, high-resolution stages of an
        ImageNet network hold much of a step's time and need the least change).

        Raises:
            ConvnetError: for a count outside 0..(the layers before the classifier).
        """
        before_head = self.head_start
        if not isinstance(count, int) or not 0 <= count <= before_head:
            raise ConvnetError(f"frozen_layers must be a layer count from 0 to {before_head} "
                               f"(the layers before the flatten). Received: "
                               f"frozen_layers={count!r}.")
        self.frozen_layers = count
        for index, module in enumerate(self.body):
            for parameter in module.parameters():
                parameter.requires_grad_(index >= count)
        # the steps run in _order's order: frozen while every index so far is under count
        self._frozen_steps = next((step for step, index in enumerate(self._order)
                                   if index >= count), len(self._order))
        self.train(self.training)

    def train(self, mode: bool = True) -> Network:
        super().train(mode)
        if mode and (self.frozen_statistics or self.frozen_layers):
            frozen = self.body if self.frozen_statistics else self.body[: self.frozen_layers]
            for module in frozen.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    @property
    def head_parameters(self) -> list[nn.Parameter]:
        """The weights after the flatten: the fully connected layers."""
        return [p for module in self.body[self.head_start:] for p in module.parameters()]

    def _run(self, x: torch.Tensor, order: list[int],
             kept: list[torch.Tensor] | None = None) -> torch.Tensor:
        """The layers ``order`` names, in turn; ``kept`` carries the inputs of skips still
        open from an earlier part of the order."""
        kept = [] if kept is None else kept
        for index in order:
            x = self._step(index, x, kept)
        return x

    def _step(self, index: int, x: torch.Tensor, kept: list[torch.Tensor]) -> torch.Tensor:
        """Layer ``index`` on ``x``; a skip keeps its input, an add adds the last kept."""
        module = self.body[index]
        if isinstance(module, SkipStart):
            kept.append(x)
            return x
        if isinstance(module, SkipAdd):
            return module(x, kept.pop())
        return module(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, self._order[: self.head_start])  # (B, C, H, W) -> (B, D, h, w)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        # (B, D, h, w) -> (B, classes)
        return self._run(features, self._order[self.head_start :])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, C, H, W) -> (B, classes) logits
        frozen = self._frozen_steps
        if not (frozen and self.training and torch.is_grad_enabled()):
            return self._run(x, self._order)
        kept: list[torch.Tensor] = []  # skips may open in the frozen part and close later
        with torch.no_grad():
            x = self._run(x, self._order[:frozen], kept)
        return self._run(x, self._order[frozen:], kept)

    def forward_embedding(self, x: torch.Tensor) -> torch.Tensor:
        """What the last layer (the classifier) sees: (B, C, H, W) -> (B, D). Scores of
        how unlike the training images an input is start from it."""
        return self._run(x, self._order[:-1]).flatten(1)

    def forward_embeddings(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(what the classifier sees (B, D), and the same computed without the last
        activation before it (B, D)), in one pass. That activation (ReLU6 in EfficientNet)
        clips and zeroes much of what tells an image unlike the training images from a
        known one, so the "unknown" score starts from the second (bench/unknown.py)."""
        order, last = self._order[:-1], self._last_activation
        if last is None:
            embedding = self._run(x, order).flatten(1)
            return embedding, embedding
        kept: list[torch.Tensor] = []
        x = self._run(x, order[:last], kept)
        raw, x = x, self._step(order[last], x, kept)
        for index in order[last + 1 :]:  # pooling, dropout, flatten, dense: no skips
            x, raw = self._step(index, x, kept), self._step(index, raw, kept)
        return x.flatten(1), raw.flatten(1)

    @property
    def classifier(self) -> nn.Module:
        """The last layer: ``classifier(forward_embedding(x))`` is ``forward(x)``."""
        return self.body[self._order[-1]]

    def forward_intermediates(self, x: torch.Tensor) -> list[tuple[LayerInfo, torch.Tensor]]:
        """Every layer's output for a batch, paired with what the summary says of it."""
        outputs, kept = [], []
        for index, info in enumerate(self.infos):
            x = self._step(index, x, kept)
            outputs.append((info, x))
        return outputs

    def set_filters(self, layer: int, weights: torch.Tensor,
                    bias: torch.Tensor | float | None = None) -> None:
        """Give layer ``layer`` (numbered as `convnet summary` numbers them) these weights
        (its own shape: (F, C, k, k) for a convolution, (out, in) for a fully connected
        layer) and ``bias`` (one per filter, or one number for all; None: left as is):
        filters written by hand, as the texts write them.

        Raises:
            ConvnetError: for a layer without weights, or weights of another shape.
        """
        index = next((i for i, info in enumerate(self.infos) if info.position == layer), None)
        module = None if index is None else self.body[index]
        if module is None or not isinstance(getattr(module, "weight", None), torch.Tensor):
            raise ConvnetError(f"layer must be the number of a layer with weights (see "
                               f"convnet.summarize). Received: layer={layer!r}.")
        weights = torch.as_tensor(weights, dtype=module.weight.dtype)
        if weights.shape != module.weight.shape:
            raise ConvnetError(f"weights for layer {layer} must have the shape "
                               f"{tuple(module.weight.shape)}. Received: "
                               f"{tuple(weights.shape)}.")
        with torch.no_grad():
            module.weight.copy_(weights)
            if bias is not None and module.bias is not None:
                module.bias.copy_(torch.as_tensor(bias, dtype=module.bias.dtype)
                                  .expand_as(module.bias))

    @property
    def chw(self) -> tuple[int, int, int]:
        """The input shape as torch sees one image: (C, H, W)."""
        return hwc_to_chw(self.input_shape)

    @property
    def has_whitening(self) -> bool:
        return isinstance(self.body[0], Whitening)

    def fit_whitening(self, images: torch.Tensor) -> None:
        """Set the leading ``whiten`` layer's filters from normalised images (N, C, H, W)."""
        if self.has_whitening:
            self.body[0].fit(images)

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def differences(self, weights: dict[str, torch.Tensor]) -> list[str]:
        """What keeps ``weights`` from loading into this network: tensors of another shape
        first, then missing ones, then ones it does not have; empty when they fit."""
        own = {name: tuple(tensor.shape) for name, tensor in self.state_dict().items()}
        given = {name: tuple(tensor.shape) for name, tensor in weights.items()}
        return [f"{name} {given[name]} saved, {shape} here" for name, shape in own.items()
                if name in given and given[name] != shape] + \
            [f"{name} missing" for name in own if name not in given] + \
            [f"{name} not in this network" for name in given if name not in own]


def _last_activation(layers: list[Layer], order: list[int]) -> int | None:
    """The position in ``order`` of its last activation, when no skip follows it (then the
    layers after it can run on its input as well); else None."""
    for position in range(len(order) - 1, -1, -1):
        layer = layers[order[position]]
        if isinstance(layer, (Skip, Add)):
            return None
        if isinstance(layer, Activation):
            return position
    return None


def layer_shapes(spec: str, input_shape: tuple[int, int, int], num_classes: int
                 ) -> list[LayerInfo]:
    """Every layer's shapes and weight count for ``input_shape`` (H, W, C), without
    allocating a weight: what a size check looks at before building."""
    written = parse_spec(spec_for(spec))
    layers = resolve(written, num_classes)
    return infer(layers, hwc_to_chw(input_shape), _positions(layers, len(written)))


def _check_weights_fit(spec: str, input_shape: tuple[int, int, int],
                       infos: list[LayerInfo]) -> None:
    """A network whose weights alone exceed the memory left is refused before allocating."""
    params, available = sum(info.params for info in infos), available_bytes("cpu")
    if available is not None and 4 * params > available:
        height, width, channels = input_shape
        raise ConvnetError(
            f"{spec} on {height}×{width}×{channels} input has {params:,} weights "
            f"({human(4 * params)}) and this machine has {human(available)} of memory "
            "available. Use smaller images (image_size), or more pooling or stride before "
            "the fully connected layers.")


def build(spec: str, input_shape: str | tuple[int, int, int] = (28, 28, 1),
          num_classes: int = 10) -> Network:
    """Build a network from a spec string or preset name, with random initial weights.

    Args:
        spec: e.g. ``"conv32k3-relu-maxpool2-fc128-relu-fc"``, a preset such as ``"lenet"``,
            or ``"auto"`` (`convnet.network.presets.auto_preset` picks one for the input).
        input_shape: H×W×C, as a tuple or a string like ``"28x28x1"``.
        num_classes: size of the output layer.

    Raises:
        SpecError: for a spec that cannot be parsed or does not fit ``input_shape``.

    >>> build("lenet", "28x28x1", 10).num_params
    61706
    """
    if not isinstance(spec, str):
        raise ConvnetError("spec must be a spec string or a preset name, e.g. "
                           "'conv32k3-relu-maxpool2-fc' or 'lenet'. "
                           f"Received: spec={spec!r} ({type(spec).__name__}).")
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
        raise ConvnetError(f"num_classes must be an integer of at least 2. "
                           f"Received: num_classes={num_classes!r}.")
    shape = parse_input_shape(input_shape)
    return Network(resolve_arch(spec, shape), shape, num_classes)
