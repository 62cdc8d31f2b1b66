"""Named networks: each preset is a spec string with a name and a reason."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from convnet.errors import SpecError
from convnet.network.design import design
from convnet.network.efficientnet import SIZES, lite_spec
from convnet.network.spec import parse_spec


@dataclass(frozen=True)
class Preset:
    spec: str
    about: str


PRESETS: dict[str, Preset] = {
    "default": Preset(
        "conv16k5-bn-relu-maxpool2-conv32k5-bn-relu-maxpool2-fc256-relu-dropout0.5-fc",
        "two 5×5 conv blocks with batch norm; the `convnet train` default, chosen because "
        "it reaches 99% on digits in about 20 s on two CPU cores (bench/RESULTS.md)",
    ),
    "small": Preset(
        "conv32k3p1-bn-relu-maxpool2-conv64k3p1-bn-relu-maxpool2-conv128k3p1-bn-relu-"
        "maxpool2-gap-fc",
        "three 3×3 conv blocks ending in global average pooling: works at any image size "
        "and trains CIFAR-10 to ~80% in about 12 minutes on two CPU cores",
    ),
    "cifar-fast": Preset(
        "whiten2-gelu-conv64k3p1-maxpool2-bn-gelu-conv64k3p1-bn-gelu-conv256k3p1-maxpool2-bn-"
        "gelu-conv256k3p1-bn-gelu-conv256k3p1-maxpool2-bn-gelu-conv256k3p1-bn-gelu-maxpool3-fc",
        "the fast CIFAR-10 network of the speed-training literature (airbench94's shape): "
        "a fixed whitening layer, then three conv-pool-bn-gelu-conv-bn-gelu groups; "
        "used by `--recipe cifar-fast`",
    ),
    "cifar-fast-cpu": Preset(
        "whiten2-gelu-conv32k3p1-maxpool2-bn-gelu-conv32k3p1-bn-gelu-conv64k3p1-maxpool2-bn-"
        "gelu-conv64k3p1-bn-gelu-conv128k3p1-maxpool2-bn-gelu-conv128k3p1-bn-gelu-maxpool3-fc",
        "`cifar-fast` at widths 32/64/128 instead of 64/256/256, for CPUs; "
        "used by `--recipe cifar-fast-cpu`",
    ),
    "lenet": Preset(
        "conv6k5p2-tanh-avgpool2-conv16k5-tanh-avgpool2-fc120-tanh-fc84-tanh-fc",
        "LeNet-5 (LeCun et al., 1998): 61,706 parameters on 28×28×1 with 10 classes",
    ),
    "tinyvgg": Preset(
        "conv10k3-relu-conv10k3-relu-maxpool2-conv10k3-relu-conv10k3-relu-maxpool2-fc",
        "the small VGG-style net that CNN Explainer draws (made for 64×64×3 input)",
    ),
    "keras-mnist": Preset(
        "conv32k3-relu-maxpool2-conv64k3-relu-maxpool2-dropout0.5-fc",
        "the Keras 'simple MNIST convnet' example",
    ),
    **{name: Preset(lite_spec(name), f"{name.replace('efficientnet', 'EfficientNet')} "
                    f"(Tan & Le, 2019), made for {side}×{side}×3 photos: a stride-2 stem, "
                    "inverted-residual blocks of depthwise convolutions with their input "
                    "added back, ReLU6 and TensorFlow's padding, so ImageNet weights load "
                    "as trained (convnet.network.efficientnet)")
       for name, (_, _, side, _) in SIZES.items()},
}


def spec_for(arch: str) -> str:
    """The spec string for a preset name, or ``arch`` itself if it is not a preset name.

    Raises:
        SpecError: for a word close to a preset name that is not a spec either (a typo).
    """
    preset = PRESETS.get(arch.strip().lower())
    if preset:
        return preset.spec
    try:
        parse_spec(arch)
    except SpecError:
        close = difflib.get_close_matches(arch.strip().lower(), [*PRESETS, "auto"], n=1,
                                          cutoff=0.75)
        if close:
            raise SpecError(f"arch={arch!r} is neither a preset nor a spec. Did you mean "
                            f"{close[0]!r}? Presets: {', '.join(PRESETS)}.") from None
        raise
    return arch


def resolve_arch(arch: str, input_shape: tuple[int, int, int], device: str = "cpu") -> str:
    """``arch`` as given, except ``auto``, which becomes the network `design` draws for the
    input (a preset name where a preset is the measured best).

    The one place ``auto`` is resolved: `build` and training both call it.
    """
    return design(input_shape, device) if arch.strip().lower() == "auto" else arch
