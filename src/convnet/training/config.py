"""The training configuration: one dataclass, defaults that run out of the box.

Each field carries its help text and, for choices, the allowed values (field metadata): the
command line builds its `convnet train` options from them, so the defaults, choices and help
live here alone.
"""

from __future__ import annotations

import re
from dataclasses import Field, asdict, dataclass, field, fields
from os import PathLike
from typing import Any

from convnet.data import POLICIES
from convnet.data.preprocess import RESIZE_MODES
from convnet.errors import ConvnetError
from convnet.training.recipes import RECIPES, recipe_options

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("onecycle", "cosine", "constant")
BALANCES = ("auto", "weights", "sampler", "none")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")
COMPILES = ("auto", "on", "off")
TTAS = ("auto", "flip", "none")
AUGMENTS = ("auto", *POLICIES)
LOGGERS = ("tensorboard", "mlflow")
MAX_EPOCHS = 100_000
SMOOTHING = 0.1  # label smoothing from scratch when none is given
DEFAULT_LR = {"adamw": 8e-3, "adam": 1e-3, "sgd": 0.05}  # peak learning rate per optimizer
# ... for the head when fine-tuning trained weights, at batch 32 (bench/RESULTS.md, issue 24)
FINETUNE_LR = {"adamw": 5e-4, "adam": 5e-4, "sgd": 0.01}
FINETUNE_BATCH = 32
SCRATCH = "scratch"  # init: random weights, and the plan does not weigh trained ones


def option(default: Any, help: str, choices: tuple[str, ...] | None = None) -> Any:
    """A config field with its help text (and allowed values) for the command line."""
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass
class TrainConfig:
    data: str = option("digits", "Built-in name (see `convnet datasets`) or a folder.")
    arch: str = option("auto", "Preset (default, small, lenet, tinyvgg, keras-mnist, "
                       "cifar-fast, cifar-fast-cpu), a spec string, or auto: a network "
                       "as deep as the image size allows (the plan's).")
    time: str | None = option(None, "Time budget, e.g. 90s, 5m, 1h: the plan fits the run "
                              "into it (data loading included) and training stops by it.")
    epochs: int | None = option(None, "Full passes over the training split; unset: "
                                "planned (more for fewer images, within the time budget); "
                                "0 with init: the new head alone, on features computed "
                                "once.")
    batch_size: int | None = option(None, "Images per gradient step (all processes "
                                    "together under torchrun); unset: planned, 16-128.")
    lr: float | None = option(None, "Peak learning rate; unset: 8e-3 adamw, 1e-3 adam, "
                              "0.05 sgd at batch 128, scaled by sqrt(batch/128).")
    optimizer: str = option("adamw", "Optimizer (sgd uses Nesterov momentum).", OPTIMIZERS)
    momentum: float = option(0.9, "SGD momentum.")
    weight_decay: float = option(5e-4, "L2 penalty, decoupled for adamw.")
    schedule: str = option("onecycle", "Learning-rate schedule; onecycle warms up for 20% "
                           "of the steps, then anneals to ~0.", SCHEDULES)
    label_smoothing: float | None = option(None, "Target mass spread over the other classes; "
                                           "0 for plain log loss; unset: 0.1 from scratch, "
                                           "0 from trained weights (init).")
    ema: float | None = option(None, "Per-step decay of a moving average of the weights, "
                               "which is scored and saved (lower while the steps taken "
                               "are fewer than 4 spans); 0: off; unset: averages over "
                               "about one epoch.")
    augment: str = option("auto", "light: shifts (+ flips); strong: + crop, colour jitter, "
                          "cutout; auto: strong below 200 images per class.", AUGMENTS)
    flip: bool | None = option(None, "Random left-right flips; unset: where a check of the "
                               "images finds mirroring keeps their class (not for digits).")
    shift: int | None = option(None, "Max random translation in pixels; unset: the policy's.")
    crop_scale: float | None = option(None, "Random resized crop: smallest fraction of the "
                                      "area kept, 0-1; unset: the policy's.")
    rotate: float | None = option(None, "Max random rotation in degrees (and zoom in %); "
                                  "unset: the policy's.")
    jitter: float | None = option(None, "Colour jitter strength, 0-1; unset: the policy's.")
    cutout: int | None = option(None, "Cutout square side in pixels; unset: the policy's.")
    balance: str = option("auto", "Class imbalance: loss weights or an even sampler; auto: "
                          "weights past 1.5x imbalance.", BALANCES)
    image_size: int | None = option(None, "Side to resize the images to (a folder is decoded "
                                    "at it); unset: from the data.")
    resize: str = option("crop", "Resizing keeps the aspect ratio by centre crop or "
                         "padding.", RESIZE_MODES)
    strict: bool = option(False, "Refuse to train if the data scan finds any bad file.")
    dedupe: bool = option(False, "Drop validation and test images that are copies (exact or "
                          "near) of training images, and say how many.")
    val_split: float | None = option(None, "Fraction of each training class held out for "
                                     "validation; unset: 0.1, raised up to 0.2 so that at "
                                     "least 200 images are held out.")
    seed: int = option(0, "Random seed: same seed, device and thread count, same weights.")
    device: str = option("auto", "Where to train; auto picks cuda when available.", DEVICES)
    threads: int | None = option(None, "CPU threads; unset: every core this process may "
                                 "use, fewer while other programs keep cores busy.")
    channels_last: bool = option(True, "NHWC memory layout: faster convolutions on CPU and "
                                 "GPU.")
    sync_bn: bool = option(False, "Under torchrun on GPUs: batch norm statistics over every "
                           "process's images (SyncBatchNorm).")
    precision: str = option("auto", "bf16 autocast; auto uses it where the hardware has "
                            "bf16 natively.", PRECISIONS)
    compile: str = option("auto", "torch.compile the network; auto leaves it off (slower "
                          "on the CPUs measured).", COMPILES)
    eval_batch_size: int = option(1024, "Images per forward pass when evaluating.")
    tta: str = option("auto", "Test-time augmentation: average with the mirror image; "
                      "auto: when training flips.", TTAS)
    checkpoint_every: float = option(5.0, "Minutes between checkpoints inside an epoch "
                                     "(one is also written after every epoch); 0: only "
                                     "after epochs.")
    log: str | None = option(None, "Also log the run to tensorboard, mlflow, or both "
                             "('tensorboard,mlflow'); each needs the extra of its name.")
    log_dir: str | None = option(None, "With log=tensorboard: the folder for its event "
                                 "files. [RUN/tensorboard]")
    patience: int | None = option(None, "Stop when validation accuracy has not improved "
                                  "for this many epochs; unset: planned (2 for a fine-tune "
                                  "of 4 epochs or more, else every epoch trains); more than "
                                  "--epochs: every epoch trains.")
    init: str | None = option(None, "Start from trained weights: imagenet (EfficientNet-Lite0, "
                              "or -lite1/-lite2 with --arch and the pretrained extra), a "
                              "finished RUN folder of the same "
                              "network, or FILE.safetensors (with --arch); a new head is "
                              "trained for the data's classes, then every layer. scratch: "
                              "random weights (the plan does not weigh imagenet).")
    freeze_epochs: int | None = option(None, "With init: epochs that train only the head, on "
                                       "features computed once and cached (a head of one "
                                       "fully connected layer is fitted as logistic "
                                       "regression instead, for any count); unset: 30; 0: "
                                       "none.")
    body_lr: float | None = option(None, "With init: the body's learning rate as a fraction "
                                   "of lr; unset: 0.2.")
    frozen_layers: int | None = option(None, "With init: the first N layers (as `convnet "
                                       "summary` numbers them) keep their trained weights "
                                       "and run without gradients, for faster steps; unset: "
                                       "planned (the first stage, more under a tight time "
                                       "budget), 0 where every option is given.")
    freeze_bn: bool | None = option(None, "With init: batch norm keeps its trained statistics "
                                    "(eval mode) while the weights train; unset: on.")
    recipe: str | None = option(None, "Named defaults for the options not given, e.g. "
                                "cifar-fast (GPU) or cifar-fast-cpu.", tuple(RECIPES))

    def __post_init__(self) -> None:
        if isinstance(self.data, PathLike):
            self.data = str(self.data)
        _check_types(self)
        _check_positive("eval_batch_size", self.eval_batch_size)
        if self.freeze_epochs is not None and self.freeze_epochs < 0:
            raise ConvnetError(f"freeze_epochs must be 0 or more. Received: "
                               f"freeze_epochs={self.freeze_epochs}.")
        _check_range("body_lr", self.body_lr, 0, None, "a fraction of lr >= 0, e.g. 0.2",
                     allow_none=True)
        if self.frozen_layers is not None and self.frozen_layers < 0:
            raise ConvnetError(f"frozen_layers must be 0 or more. Received: "
                               f"frozen_layers={self.frozen_layers}.")
        for name in self.loggers:
            _check_choice("log", name, LOGGERS)
        _check_head_only(self)
        for name in ("batch_size", "image_size", "threads", "patience"):
            if getattr(self, name) is not None:
                _check_positive(name, getattr(self, name))
        # the schedule spans every epoch: it would never decay
        if self.epochs is not None and self.epochs > MAX_EPOCHS:
            raise ConvnetError(f"epochs={self.epochs} is more than {MAX_EPOCHS:,}; the "
                               "learning-rate schedule spans all of them, so such a run would "
                               "never anneal. Give a realistic count, e.g. epochs=30.")
        for spec in fields(self):
            choices = spec.metadata.get("choices")
            value = getattr(self, spec.name)
            if choices and not (value is None and spec.default is None):
                _check_choice(spec.name, value, choices)
        _check_augment_overrides(self)
        _check_range("lr", self.lr, 0, None, "a positive number", allow_none=True,
                     low_open=True)
        _check_range("val_split", self.val_split, 0, 1, "in [0, 1), e.g. 0.1 to hold out "
                     "10% of the training images", allow_none=True)
        _check_range("label_smoothing", self.label_smoothing, 0, 1, "in [0, 1)",
                     allow_none=True)
        _check_range("ema", self.ema, 0, 1, "the per-step decay of the weights' moving "
                     "average, in [0, 1), e.g. 0.98; 0 turns it off", allow_none=True)
        if self.time is not None:
            parse_time(self.time)
        _check_range("weight_decay", self.weight_decay, 0, None, ">= 0")
        _check_range("momentum", self.momentum, 0, 1, "in [0, 1)")
        _check_range("checkpoint_every", self.checkpoint_every, 0, None,
                     "minutes >= 0 (0: checkpoints only after epochs)")

    @property
    def peak_lr(self) -> float:
        if self.lr is not None:
            return self.lr
        return (FINETUNE_LR if self.fine_tunes else DEFAULT_LR)[self.optimizer]

    @property
    def fine_tunes(self) -> bool:
        """Whether the run starts from trained weights (``init`` set, and not scratch)."""
        return self.init is not None and self.init != SCRATCH

    @property
    def planned(self) -> bool:
        """Whether every option a plan decides is set (`convnet.plan.planner`)."""
        return None not in (self.epochs, self.batch_size, self.ema, self.flip) and \
            self.augment != "auto"

    @property
    def smoothing(self) -> float:
        """``label_smoothing``, or unset, its default for where the weights start: none
        from trained weights, whose probabilities one temperature then calibrates far
        better (a car/truck fine-tune: test ECE 2.6% after scaling with 0.1, 1.8% with
        none, at the same accuracy; bench/RESULTS.md), `SMOOTHING` from scratch."""
        if self.label_smoothing is not None:
            return self.label_smoothing
        return 0.0 if self.fine_tunes else SMOOTHING

    @property
    def loggers(self) -> list[str]:
        """The tools ``log`` names, in its order."""
        return [part.strip() for part in (self.log or "").split(",") if part.strip()]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a dict, rejecting keys this version does not know.

        A ``recipe`` fills in the options ``values`` does not set (`convnet.training.recipes`).
        """
        if values.get("recipe") is not None:
            values = {**recipe_options(values["recipe"]), **values}
        known = {spec.name for spec in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConvnetError(f"Unknown training option(s): {', '.join(unknown)}. Known: "
                               f"{', '.join(sorted(known))}.")
        return cls(**values)


def parse_time(text: str) -> float:
    """'90s', '5m', '1h30m' or a plain number of seconds -> seconds.

    Raises:
        ConvnetError: for anything else, or a budget under 5 seconds.
    """
    units = {"h": 3600, "m": 60, "s": 1}
    spaced = text.strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", spaced):
        seconds = float(spaced)
    elif re.fullmatch(r"(\d+(\.\d+)?[hms])+", spaced):
        seconds = sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)([hms])",
                                                                  spaced))
    else:
        raise ConvnetError(f"time must be a duration like 90s, 5m or 1h30m. Received: "
                           f"time={text!r}.")
    if seconds < 5:
        raise ConvnetError(f"time={text!r} is under 5 seconds: too short to load data and "
                           "train. Give e.g. time='1m'.")
    return seconds


_KINDS = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}


def field_kind(spec: Field) -> tuple[str, bool]:
    """A field's type name (int, float, str or bool) and whether None is allowed, read from
    its annotation (a string here: ``from __future__ import annotations``)."""
    names = [part.strip() for part in str(spec.type).split("|")]
    return next(name for name in names if name != "None"), "None" in names


def _check_types(config: TrainConfig) -> None:
    """Each field holds its annotated type (an int where a float is asked is fine)."""
    for spec in fields(config):
        kind, optional = field_kind(spec)
        value = getattr(config, spec.name)
        if value is None and optional:
            continue
        wrong_bool = isinstance(value, bool) and kind != "bool"
        if wrong_bool or not isinstance(value, _KINDS[kind]):
            example = {"int": "an integer", "float": "a number", "str": "a string",
                       "bool": "True or False"}[kind]
            if spec.name == "data":
                example = "a dataset name or a folder (str or Path)"
            raise ConvnetError(f"{spec.name} must be {example}"
                               f"{' or None' if optional else ''}. "
                               f"Received: {spec.name}={value!r} ({type(value).__name__}).")


def _check_head_only(config: TrainConfig) -> None:
    """``epochs=0`` is a fine-tune's head alone (fitted on features computed once): it needs
    head-only epochs to fit it, and trained weights to start from (`plan.start.start_of`
    checks those once the plan has chosen them)."""
    if config.epochs != 0:
        if config.epochs is not None:
            _check_positive("epochs", config.epochs)
        return
    if config.freeze_epochs == 0:
        raise ConvnetError("epochs=0 with freeze_epochs=0 trains nothing. Give "
                           "freeze_epochs of 1 or more (unset: 30), or epochs of 1 or more.")


def _check_positive(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConvnetError(f"{name} must be a positive integer. Received: {name}={value!r}.")


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConvnetError(f"{name} must be one of {', '.join(allowed)}. "
                           f"Received: {name}={value!r}.")


def _check_range(name: str, value: Any, low: float, high: float | None, expected: str,
                 allow_none: bool = False, low_open: bool = False) -> None:
    """``low <= value < high`` (``low < value`` with ``low_open``; no ``high`` if None)."""
    if value is None and allow_none:
        return
    number = isinstance(value, int | float) and not isinstance(value, bool)
    above = number and (value > low if low_open else value >= low)
    if not (above and (high is None or value < high)):
        raise ConvnetError(f"{name} must be {expected}. Received: {name}={value!r}.")


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
