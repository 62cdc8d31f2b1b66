"""``init``: the trained weights a run starts from, named by the user as ``imagenet``, a
finished run folder, or a safetensors file, turned into a `Start` and the network it needs.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors

from convnet.errors import ConvnetError
from convnet.network import build, format_spec, parse_spec
from convnet.network.efficientnet import SMALLEST
from convnet.network.spec import Dense, Flatten
from convnet.runs.builtin import is_builtin
from convnet.training.config import TrainConfig
from convnet.training.finetune import Start
from convnet.training.pretrained import IMAGENET, IMAGENET_ARCH, SOURCES, imagenet_start


def start_of(config: TrainConfig) -> Start | None:
    """The weights ``config.init`` names (None without init, or for ``scratch``).

    Raises:
        ConvnetError: without the pretrained extra, for a run of another network than
            ``config.arch``, a file that is not safetensors, or anything else (one line);
            for ``epochs=0`` (the head alone) without weights to start from.
    """
    if not config.fine_tunes:
        if config.epochs == 0:  # random weights, given or the plan's choice for the data
            raise ConvnetError("epochs=0 trains only a new head on trained features, so it "
                               "needs weights to start from, and these are random. Give "
                               "init='imagenet' (or a run), or epochs of 1 or more.")
        return None
    if is_builtin(config.init) and config.init == IMAGENET:
        return imagenet_start(_imagenet_arch(config))
    path = Path(config.init)
    if path.is_dir():
        from convnet.runs.run import load

        run = load(path)
        arch = open_head(run.record.spec)
        _same_arch(config, arch, f"a run of {run.record.arch}")
        return Start(str(path), arch, run.network.state_dict(),
                     run.record.normalization, run.record.weights_sha256, run.classes)
    if path.is_file() and path.suffix == ".safetensors":
        return _from_file(path, config)
    raise ConvnetError(f"init must be 'imagenet', 'scratch', a finished run folder or a "
                       f".safetensors file. Received: init={config.init!r}"
                       f"{' (no such file or folder)' if not path.exists() else ''}.")


def open_head(spec: str) -> str:
    """A run's spec with its output layer sized from the data again (``fc3`` -> ``fc``),
    so that it builds for other classes."""
    layers = parse_spec(spec)
    if isinstance(layers[-1], Dense):
        layers[-1] = replace(layers[-1], units=None)
    return format_spec([layer for layer in layers
                        if not (isinstance(layer, Flatten) and layer.implied)])


def _from_file(path: Path, config: TrainConfig) -> Start:
    if config.arch == "auto":
        raise ConvnetError(f"init={str(path)!r} holds weights without their network: give "
                           "the arch they were saved from too, e.g. arch='efficientnet-lite0'.")
    data = path.read_bytes()
    try:
        weights = load_safetensors(data)
    except SafetensorError as error:
        raise ConvnetError(f"init={str(path)!r} is not a readable safetensors file "
                           f"({error}).") from None
    return Start(str(path), config.arch, weights, None, hashlib.sha256(data).hexdigest())


def _imagenet_arch(config: TrainConfig) -> str:
    """The network whose ImageNet weights ``init='imagenet'`` means: the arch given (any
    spelling of one that has them), else `IMAGENET_ARCH`.

    Raises:
        ConvnetError: for an arch without shipped ImageNet weights.
    """
    if config.arch == "auto":
        return IMAGENET_ARCH
    if config.arch in SOURCES:
        return config.arch
    wanted = _spec_of(config.arch)
    for arch in SOURCES:
        if wanted is not None and wanted == _spec_of(arch):
            return arch
    raise ConvnetError(f"init='imagenet' has weights for arch {', '.join(SOURCES)}. Received: "
                       f"arch={config.arch!r}. Choose one of them, or leave arch unset "
                       f"({IMAGENET_ARCH}).")


def _spec_of(arch: str) -> str | None:
    try:
        return build(arch, (224, 224, 3), 2).spec
    except ConvnetError:
        return None


def _same_arch(config: TrainConfig, arch: str, what: str) -> None:
    """A user's arch must be the network the weights belong to (any spelling of it)."""
    if config.arch == "auto" or config.arch == arch:
        return
    theirs = _spec_of(arch)
    if theirs is None or _spec_of(config.arch) != theirs:
        raise ConvnetError(f"init={config.init!r} is {what}, and arch={config.arch!r} is "
                           f"another network. Leave arch unset: with init, the network "
                           f"follows from it ({arch[:60]}).")


def with_start(config: TrainConfig, start: Start | None) -> TrainConfig:
    """``config`` with the network that ``start`` belongs to, and the label smoothing
    for that start when none is given (`TrainConfig.smoothing`)."""
    config = replace(config, label_smoothing=config.smoothing)
    return config if start is None else replace(config, arch=start.arch)


def channels_of(start: Start | None) -> int | None:
    """The channels the weights take (None: the data's own)."""
    if start is None or start.normalization is None:
        return None
    return int(start.normalization.mean.numel())


def check_size(start: Start | None, input_shape: tuple[int, int, int], data: str) -> None:
    """Trained weights need images large enough for every one of their stages.

    Raises:
        ConvnetError: naming the size and the fix.
    """
    height, width, _ = input_shape
    # EfficientNet builds at any size (same padding), so its floor is checked here; other
    # networks refuse sizes they do not fit when they are built
    if start is not None and start.arch.startswith("efficientnet") and \
            min(height, width) < SMALLEST:
        raise ConvnetError(f"data={data!r} gives {height}×{width} images, too small for "
                           f"init={start.name!r} ({start.arch[:40]} shrinks them 32-fold). "
                           f"Use a folder of photos (decoded at the planned size) or "
                           f"image_size={SMALLEST * 3} or more.")


def describe(start: Start, phase: dict | None) -> str:
    """One line on how the new head was fitted."""
    new = f"a new head ({', '.join(phase['new'])})" if phase and phase["new"] else \
        "its own head"
    if not phase or not phase.get("epochs"):
        return f"starting from init={start.name} with {new}"
    how = phase.get("how", f"{phase['epochs']} head-only epochs")
    return (f"starting from init={start.name} with {new}: {how} "
            f"on features of the body computed once ({phase['features_seconds']:.1f} s, "
            f"cached), {phase['seconds']:.1f} s in all, loss {phase['loss']:.3f}"
            + (f"; the head alone scores {phase['val_acc']:.1%} on the validation images"
               if "val_acc" in phase else "")
            + (f", then is fitted again on all {phase['refit']:,} training and validation "
               "images (the calibration stays that of the held-out fit)"
               if "refit" in phase else ""))
