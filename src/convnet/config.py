"""The training configuration: one dataclass, defaults that run out of the box."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from convnet.errors import ConvnetError
from convnet.recipes import recipe_options

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("onecycle", "cosine", "constant")
AUGMENTS = ("none", "light", "strong")
BALANCES = ("auto", "weights", "sampler", "none")
RESIZES = ("crop", "pad")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")
COMPILES = ("auto", "on", "off")
TTAS = ("auto", "flip", "none")
DEFAULT_LR = {"adamw": 8e-3, "adam": 1e-3, "sgd": 0.05}  # peak learning rate per optimizer


@dataclass
class TrainConfig:
    data: str = "digits"  # built-in name (see `convnet datasets`) or a folder
    arch: str = "auto"  # preset name, spec string (see `convnet.spec`), or auto (by input)
    epochs: int = 14  # full passes over the training split
    batch_size: int = 128  # images per gradient step
    lr: float | None = None  # peak learning rate; None: DEFAULT_LR for the optimizer
    optimizer: str = "adamw"  # adamw | adam | sgd (SGD uses Nesterov momentum)
    momentum: float = 0.9  # SGD only
    weight_decay: float = 5e-4  # L2 penalty, decoupled for AdamW
    schedule: str = "onecycle"  # onecycle: warm up for 20% of steps, then anneal to ~0
    label_smoothing: float = 0.1  # cross-entropy target mass spread over other classes
    ema: float = 0.98  # decay of a per-step moving average of the weights; 0: off
    augment: str = "light"  # none | light | strong (see convnet.augment.policy)
    flip: bool | None = None  # None: the policy's choice (off for digits)
    shift: int | None = None  # max translation in pixels; None: the policy's
    crop_scale: float | None = None  # random resized crop min area; None: the policy's
    rotate: float | None = None  # max rotation in degrees (and zoom in %); None: the policy's
    jitter: float | None = None  # colour jitter strength; None: the policy's
    cutout: int | None = None  # cutout square side in pixels; None: the policy's
    balance: str = "auto"  # weights | sampler | none; auto: weights past 1.5x imbalance
    image_size: int | None = None  # folder data: side to resize to; None: from the data
    resize: str = "crop"  # folder data: crop (centre crop) or pad (letterbox) to the size
    strict: bool = False  # refuse to train when the data scan finds any bad file
    val_split: float = 0.1  # fraction of each training class held out for validation
    seed: int = 0  # same seed and device -> same weights
    device: str = "auto"  # auto picks cuda when available
    channels_last: bool = True  # NHWC memory layout: faster convolutions on CPU and GPU
    precision: str = "auto"  # bf16 autocast where the hardware has it natively; fp32 otherwise
    compile: str = "auto"  # torch.compile the network; auto: off (see convnet.speed)
    eval_batch_size: int = 1024  # images per forward pass when evaluating
    tta: str = "auto"  # flip: average with the mirror image at test time; auto: if trained so
    recipe: str | None = None  # named defaults (convnet.recipes), recorded for the run

    def __post_init__(self) -> None:
        _check_positive("epochs", self.epochs)
        _check_positive("batch_size", self.batch_size)
        _check_positive("eval_batch_size", self.eval_batch_size)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_choice("augment", self.augment, AUGMENTS)
        _check_choice("device", self.device, DEVICES)
        _check_choice("balance", self.balance, BALANCES)
        _check_choice("resize", self.resize, RESIZES)
        _check_choice("precision", self.precision, PRECISIONS)
        _check_choice("compile", self.compile, COMPILES)
        _check_choice("tta", self.tta, TTAS)
        if self.image_size is not None:
            _check_positive("image_size", self.image_size)
        _check_augment_overrides(self)
        if self.lr is not None and not self.lr > 0:
            raise ConvnetError(f"lr must be a positive number. Received: lr={self.lr}.")
        if not 0 <= self.val_split < 1:
            raise ConvnetError("val_split must be in [0, 1), e.g. 0.1 to hold out 10% of the "
                               f"training images. Received: val_split={self.val_split}.")
        if not 0 <= self.label_smoothing < 1:
            raise ConvnetError("label_smoothing must be in [0, 1). "
                               f"Received: label_smoothing={self.label_smoothing}.")
        if not 0 <= self.ema < 1:
            raise ConvnetError("ema is the per-step decay of the weights' moving average, in "
                               f"[0, 1), e.g. 0.98; 0 turns it off. Received: ema={self.ema}.")
        if self.weight_decay < 0 or not 0 <= self.momentum < 1:
            raise ConvnetError("weight_decay must be >= 0 and momentum in [0, 1). Received: "
                               f"weight_decay={self.weight_decay}, momentum={self.momentum}.")

    @property
    def peak_lr(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a dict, rejecting keys this version does not know.

        A ``recipe`` fills in the options ``values`` does not set (`convnet.recipes`).
        """
        if values.get("recipe") is not None:
            values = {**recipe_options(values["recipe"]), **values}
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConvnetError(f"Unknown training option(s): {', '.join(unknown)}. Known: "
                               f"{', '.join(sorted(known))}.")
        return cls(**values)


def _check_positive(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        flag = name.replace("_", "-")
        raise ConvnetError(f"{name} must be a positive integer (--{flag} 1 or more). "
                           f"Received: {name}={value!r}.")


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConvnetError(f"{name} must be one of {', '.join(allowed)}. "
                           f"Received: {name}={value!r}.")


def _check_augment_overrides(config: TrainConfig) -> None:
    if config.shift is not None and config.shift < 0 or \
            config.cutout is not None and config.cutout < 0:
        raise ConvnetError(f"shift and cutout are pixel counts >= 0. Received: "
                           f"shift={config.shift}, cutout={config.cutout}.")
    if config.crop_scale is not None and not 0 < config.crop_scale <= 1:
        raise ConvnetError("crop_scale is the smallest fraction of the image a random crop "
                           f"keeps, in (0, 1]. Received: crop_scale={config.crop_scale}.")
    if config.rotate is not None and not 0 <= config.rotate <= 45:
        raise ConvnetError("rotate is the largest rotation in degrees, 0 to 45. "
                           f"Received: rotate={config.rotate}.")
    if config.jitter is not None and not 0 <= config.jitter < 1:
        raise ConvnetError(f"jitter must be in [0, 1). Received: jitter={config.jitter}.")
