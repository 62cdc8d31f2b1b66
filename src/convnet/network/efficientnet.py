"""EfficientNet-Lite (Tan & Le, 2019; the Lite variants of the TensorFlow TPU repository) as
plain spec strings: every layer is a token the rest of convnet already understands.

A stage of the table repeats an inverted-residual block (MobileNetV2's MBConv without
squeeze-and-excitation, as Lite drops it): a 1×1 convolution that widens the maps by the
expansion ratio, a depthwise k×k convolution, a 1×1 convolution back down, batch norm
after each and ReLU6 after the first two. The first block of a stage may stride and change
width; the others keep the shape, so their input is added back (``skip ... add``).
Convolutions have no bias (batch norm shifts the maps), padding is TensorFlow's "same"
and batch norm's epsilon is TensorFlow's 1e-3, so ImageNet weights trained in TensorFlow
give the same logits here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

BN = "bneps0.001"  # TensorFlow's batch-norm epsilon, which the trained weights expect


@dataclass(frozen=True)
class Stage:
    repeats: int
    kernel: int
    stride: int
    expand: int
    filters: int


# (repeats, kernel, stride, expansion, output filters): EfficientNet-B0's stages
STAGES = (Stage(1, 3, 1, 1, 16), Stage(2, 3, 2, 6, 24), Stage(2, 5, 2, 6, 40),
          Stage(3, 3, 2, 6, 80), Stage(3, 5, 1, 6, 112), Stage(4, 5, 2, 6, 192),
          Stage(1, 3, 1, 6, 320))
STEM, HEAD = 32, 1280  # Lite keeps these at every size
SMALLEST = 32  # the image is halved five times: 32 px is 1×1 at its end
# name: (width multiplier, depth multiplier, the input side it was trained at, dropout)
SIZES = {"efficientnet-lite0": (1.0, 1.0, 224, 0.2), "efficientnet-lite1": (1.0, 1.1, 240, 0.2),
         "efficientnet-lite2": (1.1, 1.2, 260, 0.3)}


def _width(filters: int, multiplier: float, divisor: int = 8) -> int:
    """Filters scaled by the width multiplier, rounded to a multiple of 8 (never below 90%
    of the scaled count), as the reference scales them."""
    scaled = filters * multiplier
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * scaled else rounded)


def _block(channels: int, stage: Stage, stride: int, filters: int) -> list[str]:
    wide = channels * stage.expand
    tokens = [f"conv{wide}k1nb", BN, "relu6"] if stage.expand != 1 else []
    tokens += [f"dwconvk{stage.kernel}" + (f"s{stride}" if stride != 1 else "") + "ptfnb",
               BN, "relu6", f"conv{filters}k1nb", BN]
    return ["skip", *tokens, "add"] if stride == 1 and channels == filters else tokens


def lite_spec(name: str) -> str:
    """The spec of EfficientNet-Lite0, -Lite1 or -Lite2, with 1,000 ImageNet outputs left to
    the data (a bare ``fc``)."""
    width, depth, _, dropout = SIZES[name]
    tokens = [f"conv{STEM}k3s2ptfnb", BN, "relu6"]
    channels, last = STEM, len(STAGES) - 1
    for index, stage in enumerate(STAGES):
        filters = _width(stage.filters, width)
        # the first and last stages keep their depth in Lite
        repeats = stage.repeats if index in (0, last) else math.ceil(stage.repeats * depth)
        for repeat in range(repeats):
            tokens += _block(channels, stage, stage.stride if repeat == 0 else 1, filters)
            channels = filters
    tokens += [f"conv{HEAD}k1nb", BN, "relu6", "gap", f"dropout{dropout:g}", "fc"]
    return "-".join(tokens)
