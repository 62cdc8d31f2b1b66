"""The one-line network spec: text -> layer descriptions -> the same text.

A spec names the layers in order, joined by ``-``. Every hyperparameter the texts discuss
has a letter:

=========================  ===============================================================
token                      layer
=========================  ===============================================================
``conv32k3``               convolution: 32 filters, 3×3 kernel, stride 1, no padding
``conv32k5s2p2``           ... stride 2 (``s``), padding 2 pixels on every side (``p``)
``conv32k3psame``          ... padding that keeps H×W at stride 1 (odd kernels only)
``conv32k3pvalid``         ... no padding (the default, written out)
``conv32k3s2ptf``          ... TensorFlow's "same": output ceil(W/S), the odd pixel of
                           padding at the right and bottom (as TF-trained weights expect)
``conv32k3g4``             grouped: 4 groups, each filter sees a quarter of the channels
``conv32k3nb``             ... without a bias (a following ``bn`` shifts the maps anyway)
``dwconvk3``               depthwise: one 3×3 filter per input channel, as many maps as
                           channels (``m2``: two per channel); same ``s``/``p``/``nb``
``maxpool2``               max pooling, 2×2 window, stride = window
``maxpool3s2``             max pooling, 3×3 window, stride 2
``avgpool2``               average pooling (same options as ``maxpool``)
``gap``                    global average pooling: one value per feature map
``relu`` ``relu6`` ``tanh`` ``sigmoid`` ``gelu``  activations (relu6: min(max(x, 0), 6))
``whiten2``                (first layer only) fixed 2×2 filters that whiten the input's
                           patches, set from the training images (PCA); 2·C·k² maps
``skip`` ... ``add``       a residual connection: ``add`` adds the maps that came into the
                           ``skip`` before it to the layers' output (same shape; nestable)
``bn``                     batch normalisation (2-D on feature maps, 1-D on vectors)
``bneps0.001``             ... with another epsilon (TensorFlow-trained weights use 1e-3)
``dropout0.5``             dropout with probability 0.5 (``dropout`` alone means 0.5)
``flatten``                feature maps -> vector (implied before the first ``fc``)
``fc128``                  fully connected layer with 128 units
``fc``                     (last layer only) as many units as the data has classes
=========================  ===============================================================

The last layer is the output layer. If it is a bare ``fc`` its size comes from the data;
if the spec does not end in ``fc``, an ``fc`` sized from the data is appended.

>>> format_spec(parse_spec("conv32k3-relu-maxpool2-fc128-relu-fc10"))
'conv32k3-relu-maxpool2-fc128-relu-fc10'
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

from convnet.errors import SpecError

Padding = int | Literal["same", "tf"]


def _window_text(kernel: int, stride: int, padding: Padding) -> str:
    """The ``k3s2ptf``-style middle shared by the convolution tokens."""
    text = f"k{kernel}" + (f"s{stride}" if stride != 1 else "")
    return text + (f"p{padding}" if padding else "")  # 0 (valid) is not written


@dataclass(frozen=True)
class Conv:
    filters: int
    kernel: int
    stride: int = 1
    padding: Padding = 0
    groups: int = 1
    bias: bool = True

    def token(self) -> str:
        text = f"conv{self.filters}" + _window_text(self.kernel, self.stride, self.padding)
        text += f"g{self.groups}" if self.groups != 1 else ""
        return text + ("" if self.bias else "nb")


@dataclass(frozen=True)
class DepthwiseConv:
    """One filter (or ``multiplier`` filters) per input channel, each seeing only its own
    channel: the spatial half of a separable convolution (MobileNet, EfficientNet)."""

    kernel: int
    stride: int = 1
    padding: Padding = 0
    multiplier: int = 1
    bias: bool = True

    def token(self) -> str:
        text = "dwconv" + _window_text(self.kernel, self.stride, self.padding)
        text += f"m{self.multiplier}" if self.multiplier != 1 else ""
        return text + ("" if self.bias else "nb")


@dataclass(frozen=True)
class Pool:
    kind: Literal["max", "avg"]
    window: int
    stride: int | None = None  # None: equal to the window, the texts' usual choice

    @property
    def step(self) -> int:
        return self.window if self.stride is None else self.stride

    def token(self) -> str:
        text = f"{self.kind}pool{self.window}"
        return text if self.stride is None else f"{text}s{self.stride}"


@dataclass(frozen=True)
class GlobalAvgPool:
    def token(self) -> str:
        return "gap"


@dataclass(frozen=True)
class Whiten:
    """A convolution whose filters come from the data, not from training: the eigenvectors
    of the k×k input patches' covariance, each scaled by 1/sqrt(eigenvalue), with and without
    a minus sign, so the maps it makes are decorrelated with unit variance."""

    kernel: int

    def token(self) -> str:
        return f"whiten{self.kernel}"


@dataclass(frozen=True)
class Activation:
    name: Literal["relu", "relu6", "tanh", "sigmoid", "gelu"]

    def token(self) -> str:
        return self.name


@dataclass(frozen=True)
class Skip:
    """Keeps its input for the matching `Add` (the start of a residual connection)."""

    def token(self) -> str:
        return "skip"


@dataclass(frozen=True)
class Add:
    """Adds the input kept by the matching `Skip` to its own input: y = x + f(x)."""

    def token(self) -> str:
        return "add"


@dataclass(frozen=True)
class BatchNorm:
    eps: float = 1e-5  # torch's default

    def token(self) -> str:
        return "bn" if self.eps == 1e-5 else f"bneps{self.eps:g}"


@dataclass(frozen=True)
class Dropout:
    p: float = 0.5

    def token(self) -> str:
        return f"dropout{self.p:g}"


@dataclass(frozen=True)
class Flatten:
    implied: bool = False  # inserted by `resolve`, not written in the spec

    def token(self) -> str:
        return "" if self.implied else "flatten"


@dataclass(frozen=True)
class Dense:
    units: int | None  # None: as many as the data has classes (last layer only)

    def token(self) -> str:
        return "fc" if self.units is None else f"fc{self.units}"


Layer = (Conv | DepthwiseConv | Whiten | Pool | GlobalAvgPool | Activation | BatchNorm
         | Dropout | Flatten | Dense | Skip | Add)
CONVOLUTIONS = (Conv, DepthwiseConv)  # the layers whose filters slide over feature maps

KINDS = ("conv", "dwconv", "maxpool", "avgpool", "gap", "fc", "relu", "relu6", "tanh",
         "sigmoid", "gelu", "bn", "dropout", "flatten", "whiten", "skip", "add")
_GRAMMAR = {
    "conv": "conv<filters>k<kernel>[s<stride>][p<padding>|psame|ptf|pvalid][g<groups>][nb], "
            "e.g. conv32k3",
    "dwconv": "dwconvk<kernel>[s<stride>][p<padding>|psame|ptf|pvalid][m<multiplier>][nb], "
              "e.g. dwconvk3",
    "maxpool": "maxpool<window>[s<stride>], e.g. maxpool2",
    "avgpool": "avgpool<window>[s<stride>], e.g. avgpool2",
    "fc": "fc<units>, e.g. fc128, or a bare fc as the last layer",
    "dropout": "dropout<probability>, e.g. dropout0.5",
    "bn": "bn, or bneps<epsilon>, e.g. bneps0.001",
    "whiten": "whiten<kernel>, e.g. whiten2",
}
_PATTERNS = {
    "conv": re.compile(r"conv(\d+)k(\d+)(?:s(\d+))?(?:p(\d+|same|valid|tf))?(?:g(\d+))?(nb)?"),
    "dwconv": re.compile(r"dwconvk(\d+)(?:s(\d+))?(?:p(\d+|same|valid|tf))?(?:m(\d+))?(nb)?"),
    "maxpool": re.compile(r"maxpool(\d+)(?:s(\d+))?"),
    "avgpool": re.compile(r"avgpool(\d+)(?:s(\d+))?"),
    "fc": re.compile(r"fc(\d+)?"),
    "dropout": re.compile(r"dropout(\d*\.?\d+)?"),
    "whiten": re.compile(r"whiten(\d+)"),
    "bn": re.compile(r"bn(?:eps(\d*\.?\d+))?"),
}
_PLAIN = {
    "gap": GlobalAvgPool(), "relu": Activation("relu"), "relu6": Activation("relu6"),
    "tanh": Activation("tanh"),
    "sigmoid": Activation("sigmoid"), "gelu": Activation("gelu"),
    "flatten": Flatten(), "skip": Skip(), "add": Add(),
}


def _fail(position: int, token: str, problem: str, received: str) -> SpecError:
    return SpecError(f"Spec token {position} '{token}' {problem} Received: {received}.")


def _positive(position: int, token: str, name: str, value: str | None) -> int | None:
    if value is None:
        return None
    number = int(value)
    if number < 1:
        raise _fail(position, token, f"needs {name} of at least 1.", f"{name}={number}")
    return number


def _kernel_and_padding(position: int, token: str, kernel_text: str,
                        padding: str | None) -> tuple[int, Padding]:
    pad: Padding = padding if padding in ("same", "tf") else \
        0 if padding in (None, "valid") else int(padding)
    kernel = _positive(position, token, "kernel", kernel_text)
    if pad == "same" and kernel % 2 == 0:
        raise _fail(position, token, "uses psame, which needs an odd kernel size; write the "
                    "padding as a number instead, or ptf (TensorFlow's same).",
                    f"kernel={kernel}")
    return kernel, pad


def _parse_token(position: int, token: str) -> Layer:
    if token in _PLAIN:
        return _PLAIN[token]
    kind = next((name for name in sorted(_PATTERNS, key=len, reverse=True)
                 if token.startswith(name)), re.match(r"[a-z]*", token).group(0))
    if kind not in _PATTERNS:
        close = difflib.get_close_matches(kind or token, KINDS, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise _fail(position, token, f"is not a layer. Expected one of: {', '.join(KINDS)}."
                    f"{hint}", repr(token))
    match = _PATTERNS[kind].fullmatch(token)
    if match is None:
        raise _fail(position, token, f"is not a valid {kind} layer. Expected "
                    f"{_GRAMMAR[kind]}.", repr(token))
    groups = match.groups()
    if kind == "conv":
        kernel, pad = _kernel_and_padding(position, token, groups[1], groups[3])
        return Conv(_positive(position, token, "filters", groups[0]), kernel,
                    _positive(position, token, "stride", groups[2]) or 1, pad,
                    _positive(position, token, "groups", groups[4]) or 1, groups[5] is None)
    if kind == "dwconv":
        kernel, pad = _kernel_and_padding(position, token, groups[0], groups[2])
        return DepthwiseConv(kernel, _positive(position, token, "stride", groups[1]) or 1,
                             pad, _positive(position, token, "multiplier", groups[3]) or 1,
                             groups[4] is None)
    if kind in ("maxpool", "avgpool"):
        return Pool(kind[:3], _positive(position, token, "window", groups[0]),
                    _positive(position, token, "stride", groups[1]))
    if kind == "whiten":
        return Whiten(_positive(position, token, "kernel", groups[0]))
    if kind == "bn":
        if groups[0] is None:
            return BatchNorm()
        eps = float(groups[0])
        if not 0 < eps < 1:
            raise _fail(position, token, "needs an epsilon in (0, 1).", f"eps={eps:g}")
        return BatchNorm(eps)
    if kind == "fc":
        return Dense(_positive(position, token, "units", groups[0]))
    p = 0.5 if groups[0] is None else float(groups[0])
    if not 0.0 <= p < 1.0:
        raise _fail(position, token, "needs a probability in [0, 1).", f"p={p:g}")
    return Dropout(p)


def _check_skips(layers: list[Layer], tokens: list[str]) -> None:
    """Every ``add`` closes an open ``skip``, and every ``skip`` is closed."""
    open_at: list[int] = []
    for position, (layer, token) in enumerate(zip(layers, tokens), start=1):
        if isinstance(layer, Skip):
            open_at.append(position)
        elif isinstance(layer, Add) and not open_at:
            raise _fail(position, token, "has no skip before it to add back. Start the "
                        "residual connection with 'skip', e.g. skip-conv8k3p1-add.",
                        repr(token))
        elif isinstance(layer, Add):
            open_at.pop()
    if open_at:
        raise _fail(open_at[-1], "skip", "is never closed. End the residual connection with "
                    "'add', e.g. skip-conv8k3p1-add.", "'skip'")


def _check_order(layers: list[Layer], tokens: list[str]) -> None:
    """Maps come before vectors; a bare `fc` only at the end; skips close."""
    _check_skips(layers, tokens)
    flat_at = None
    for position, (layer, token) in enumerate(zip(layers, tokens), start=1):
        if isinstance(layer, Dense) and layer.units is None and position != len(layers):
            raise _fail(position, token, "has no size, which only the last layer may omit. "
                        "Give it a number of units, e.g. fc128.", repr(token))
        if isinstance(layer, Whiten) and position != 1:
            raise _fail(position, token, "must be the first layer: its filters are computed "
                        "from the input images' patches.", repr(token))
        spatial = isinstance(layer, Conv | DepthwiseConv | Whiten | Pool | GlobalAvgPool)
        if spatial and flat_at is not None:
            raise _fail(position, token, "works on feature maps, but token "
                        f"{flat_at} '{tokens[flat_at - 1]}' already flattened them to a "
                        "vector. Put convolution and pooling layers before the first fc.",
                        repr(token))
        if isinstance(layer, Flatten) and flat_at is not None:
            raise _fail(position, token, f"flattens again after token {flat_at}. "
                        "Remove it.", repr(token))
        if isinstance(layer, Flatten | Dense) and flat_at is None:
            flat_at = position


def parse_spec(spec: str) -> list[Layer]:
    """Parse a spec string into layer descriptions.

    Args:
        spec: layers joined by ``-``, e.g. ``"conv32k3-relu-maxpool2-fc10"``
            (see the module docstring for the grammar).

    Returns:
        One frozen dataclass per token, in order.

    Raises:
        SpecError: naming the token, its position, what was expected and what was received.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise SpecError(f"The spec must name at least one layer, e.g. 'conv32k3-relu-fc'. "
                        f"Received: {spec!r}.")
    tokens = spec.strip().lower().split("-")
    for position, token in enumerate(tokens, start=1):
        if not token:
            raise SpecError(f"Spec token {position} is empty: two '-' in a row, or a '-' at "
                            f"an end. Received: {spec!r}.")
    layers = [_parse_token(position, token) for position, token in enumerate(tokens, 1)]
    _check_order(layers, tokens)
    return layers


def format_spec(layers: list[Layer]) -> str:
    """The canonical spec string for a list of layers (the inverse of `parse_spec`)."""
    return "-".join(token for layer in layers if (token := layer.token()))


def resolve(layers: list[Layer], num_classes: int) -> list[Layer]:
    """Make the output layer explicit: size the last ``fc`` from the classes, add flatten.

    Raises:
        SpecError: if the spec's last ``fc`` has a size that differs from ``num_classes``.
    """
    if num_classes < 2:
        raise SpecError(f"A classifier needs at least 2 classes. Received: {num_classes}.")
    layers = list(layers)
    last = layers[-1]
    if isinstance(last, Dense) and last.units not in (None, num_classes):
        raise SpecError(
            f"The last layer '{last.token()}' (token {len(layers)}) has {last.units} units "
            f"but the data has {num_classes} classes. End the spec with a bare 'fc' to size "
            f"it from the data, or with fc{num_classes}. Received: {last.token()} for "
            f"{num_classes} classes."
        )
    if isinstance(last, Dense):
        layers[-1] = Dense(num_classes)
    else:
        layers.append(Dense(num_classes))
    first_vector = next(i for i, layer in enumerate(layers) if isinstance(layer, Flatten | Dense))
    if not isinstance(layers[first_vector], Flatten):
        layers.insert(first_vector, Flatten(implied=True))
    return layers
