"""A training plan derived from the data's fingerprint and this machine, as nnU-Net derives
its configuration from a dataset: image size, network, batch, epochs, augmentation,
learning rate, weight averaging and flips. Every option the user gave is kept as given.

The rules, and the measurements behind them (bench/RESULTS.md, "The planner"):

- image size (folders): the largest of `SIZES` that the images' own detail (twice it
  under --time), the device's cap and the time budget allow; folders of one image size
  keep it where the cap and the detail allow. Data in memory keeps its size, unless under
  --time not one epoch fits there: it is then resampled to the largest smaller side whose
  epochs fit (`convnet.data.rescale`);
- network: `convnet.network.design` for that size;
- batch: about 1/32 of the training images, a power of two from 16 to 128 (512 on a GPU):
  small datasets get more, smaller steps;
- epochs: 14 at digits' 7,200 training images, growing with 1/sqrt(images) for fewer (small
  datasets need more passes), within 10..300, and cut to what fits the budget;
- augmentation: strong below 200 images per class (from 16 px up), light otherwise;
- learning rate: AdamW's 8e-3 at batch 128, scaled with the square root of the batch;
- weight averaging: a horizon of one epoch, turned into the per-step decay;
- flips: `convnet.data.mirror` decides from the images whether a mirror image keeps its class.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from convnet.data.dataset import DEFAULT_SHARE, FEWEST_HELD, MOST_SHARE, validation_share
from convnet.data.fingerprint import Fingerprint
from convnet.data.mirror import MirrorCheck
from convnet.network import PRESETS, resolve_arch
from convnet.network.design import stages_for
from convnet.plan.budget import after_seconds, scored_after
from convnet.plan.freezing import FORWARD_SHARE
from convnet.training import compiler_import
from convnet.training.config import DEFAULT_LR, TrainConfig

SIZES = (16, 24, 32, 48, 64, 96, 128, 160, 224)
SIZE_CAP = {"cpu": 64, "cuda": 128}  # largest planned side without --time
BUDGET_SIZE_CAP = {"cpu": 128, "cuda": 224}  # ... and with --time
DEFAULT_BUDGET = {"cpu": 300.0, "cuda": 120.0}  # seconds a plan aims at without --time
REFERENCE_IMAGES, REFERENCE_EPOCHS = 7200, 14  # digits: 14 epochs reach 99%
STRONG_BELOW = 200  # images per class under which augmentation is strong
MOST_BATCH = {"cpu": 128, "cuda": 512}
OVERHEAD = 1.25  # measured steps to real epochs: batching, augmentation, validation
# an estimate this many seconds past what a budget leaves is said in the headline: the
# run will end late whatever it cuts (the estimates err by about a second either way)
OVERRUN_SECONDS = 1.0

Probe = Callable[[str, tuple[int, int, int], int, int], float]  # -> seconds per image
# (arch, input shape, classes, fp32: as the run answers, else at its precision) -> seconds
# per image of a forward pass without autograd
PassProbe = Callable[[str, tuple[int, int, int], int, bool], float]


@dataclass
class Choice:
    """One planned setting: its value as shown, and why."""

    name: str
    value: str
    reason: str
    given: bool = False  # the user set it; the plan kept it


@dataclass
class Plan:
    """The resolved config and how each choice was made."""

    fingerprint: Fingerprint
    config: TrainConfig  # every planned option filled in
    choices: list[Choice] = field(default_factory=list)
    seconds: float | None = None  # estimated training time
    budget: float | None = None  # seconds, from `time`
    device: str = "cpu"
    most_epochs: int = 0  # what a time budget may raise the epochs to, measured as it runs
    pressed: bool = False  # the budget cut a fine-tune's epochs or its trained layers
    spare: float = 0.0  # seconds of the budget kept from training (the test score, saving)
    sized_before: bool = False  # the image side came from a plan made before decoding

    @property
    def designed(self) -> bool:
        """Whether the network is `design`'s (``arch`` was auto)."""
        return any(c.name == "arch" and not c.given for c in self.choices)

    def headline(self) -> str:
        """'planned from 2,000 colour training images of 120-400 px, 2 classes: 64 px, ...'"""
        parts = [c.value if c.name != "epochs" else f"{c.value} epochs" for c in self.choices
                 if c.name in ("image_size", "arch", "epochs", "augment")]
        where = "this GPU" if self.device == "cuda" else "this CPU"
        tail = f" — ~{human_seconds(self.seconds)} on {where}" if self.seconds else ""
        if self.overruns:
            left = self.budget + self.spare
            left = "nothing" if left < 1 else human_seconds(left)
            # after decoding, the side is fixed: the least is the least at that side
            side = " at the image side chosen before decoding" if self.sized_before else ""
            tail += (f", more than the time budget leaves after start-up and the data "
                     f"({left}): the least this plan can do{side}, so the run takes longer")
        return f"planned from {self.fingerprint.describe()}: {', '.join(parts)}{tail}"

    @property
    def overruns(self) -> bool:
        """Whether even this plan, the least the budget pressed it to, is estimated past
        what the time budget leaves (a short --time on a folder slow to decode)."""
        return self.budget is not None and self.seconds is not None and \
            self.seconds > self.budget + self.spare + OVERRUN_SECONDS

    def to_dict(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint.to_dict(), "device": self.device,
                "budget_seconds": self.budget, "estimate_seconds": self.seconds,
                "choices": [vars(choice) for choice in self.choices]}


def human_seconds(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def target_epochs(train_images: int) -> int:
    """Passes a dataset of this size needs: more for fewer images."""
    scale = math.sqrt(REFERENCE_IMAGES / max(1, train_images))
    return int(min(300, max(10, round(REFERENCE_EPOCHS * scale))))


def batch_for(train_images: int, device: str) -> int:
    power = 2 ** round(math.log2(max(1, train_images / 32)))
    return int(min(MOST_BATCH[device], max(16, power), max(1, train_images)))


def trained_images(fp: Fingerprint, val_split: float | None) -> int:
    """Training images left once validation is held out."""
    share = validation_share(val_split, fp.train_images)
    return fp.train_images if fp.has_val else max(1, round(fp.train_images * (1 - share)))


def validation_choice(fp: Fingerprint, config: TrainConfig) -> list[Choice]:
    """The validation hold-out as a plan choice (none where the data has its own val/)."""
    if fp.has_val:
        return []
    share = validation_share(config.val_split, fp.train_images)
    held = fp.train_images - trained_images(fp, config.val_split)
    given = config.val_split is not None
    why = "given" if given else "10% of the images" if share == DEFAULT_SHARE else \
        f"at least {FEWEST_HELD} images (up to {MOST_SHARE:.0%}): calibration is fitted on them"
    return [Choice("val_split", f"{share:.0%} ({held:,} images)", why, given)]


@dataclass
class _Shape:
    """One candidate: the input it trains on, its network and how long an epoch takes."""

    input_shape: tuple[int, int, int]
    arch: str
    epoch_seconds: float | None
    step_seconds: float | None = None  # a training step's, per image (overhead included)


def _candidates(fp: Fingerprint, config: TrainConfig, device: str, resizable: bool,
                budgeted: bool, shrinkable: bool = False) -> tuple[list[int | None], str]:
    """Sides to weigh, largest first (None: the images' own size), and the reason their top
    is where it is. ``shrinkable``: data in memory, kept at its own size while one epoch
    fits the budget there; past that, weighed as a folder of images of one size is, at
    smaller sides (resampled, `convnet.data.rescale`). Six 64 px shapes at --time 6s took
    10-12 s for 94.33% at their own size, and 4.8 s for 99.78% at 16 px; the digits at
    --time 6s, where 5 epochs fit at 28 px, scored 98.70% there and 98.15% at 16 px, the
    side a folder's rule (every planned epoch fits) would take (bench/HISTORY.md)."""
    if config.image_size is not None:
        return [config.image_size], "given"
    if not resizable:
        own = min(fp.uniform or (fp.shorter_sides[1],))
        return [None, *(_smaller(own) if shrinkable and budgeted else [])], \
            "the data's own size"
    middle = fp.shorter_sides[1]
    cap = (BUDGET_SIZE_CAP if budgeted else SIZE_CAP)[device]
    detail = fp.detail
    # With a budget, up to twice the detail: a network at a larger side keeps more
    # positions through its stages (tuning-set CIFAR photos: +0.5 to +3.3 points at 64 px
    # over 24-32 px, for 3-7x the time), and the budget then decides what fits.
    room = None if detail is None else (2 * detail if budgeted else detail)
    if fp.uniform is not None and max(fp.uniform) <= cap and \
            (room is None or room >= min(fp.uniform)):
        # kept as they are, unless the budget needs them smaller
        return [None, *_smaller(min(fp.uniform))], "every image has this size"
    top = min(cap, middle, room or middle)
    if room == top:
        why = (f"the images hold no finer detail than {detail} px" if room == detail else
               f"twice the images' {detail} px of detail, as the budget allows")
    elif top == middle:
        why = f"the median shorter side is {middle} px"
    else:
        why = f"{cap} px is the {device.upper()} cap{'' if budgeted else ' without --time'}"
    sizes = [s for s in SIZES if s <= top] or [max(1, top)]
    return sorted(sizes, reverse=True), why


def _smaller(own: int) -> list[int]:
    """The sides of `SIZES` under ``own``, largest first: where images of one size go when
    the budget needs them smaller."""
    return sorted((side for side in SIZES if side < own), reverse=True)


def _shape(fp: Fingerprint, side: int | None) -> tuple[int, int, int]:
    if side is None:
        height, width = fp.uniform or (fp.shorter_sides[1],) * 2
        return height, width, fp.channels
    return side, side, fp.channels


def _measure(fp: Fingerprint, config: TrainConfig, device: str, probe: Probe | None,
             side: int | None, batch: int, trained: int) -> _Shape:
    shape = _shape(fp, side)
    arch = resolve_arch(config.arch, shape, device)
    if probe is None:
        return _Shape(shape, arch, None)
    per_image = probe(arch, shape, fp.classes, batch) * OVERHEAD
    validation = 0 if fp.has_val else fp.train_images - trained
    return _Shape(shape, arch, per_image * (trained + validation / 3), per_image)


def _tail(fp: Fingerprint, config: TrainConfig, chosen: _Shape, trained: int) -> float:
    """Seconds the work after the epochs is estimated at under a budget (0 without one):
    each image scored as the run ends (`scored_after`), per view, at a forward pass's
    share of a step, and the files. The epochs fit what is left: planned to fill the
    budget, they were cut by the callback after the first, before their schedule had
    annealed (six 64 px shapes at `--time 20s`: 3 epochs planned, cut to 1, 63.89%,
    where a plan of one epoch scores 94.33%)."""
    if not config.time or chosen.step_seconds is None:
        return 0.0
    views = 1 if config.flip is False else 2
    scored = scored_after(fp.train_images - trained, fp.test_images, trained)
    return after_seconds(scored, chosen.step_seconds * FORWARD_SHARE * views)


def _side(fp: Fingerprint, config: TrainConfig, measure: tuple[str, Probe | None],
          sides: list[int | None], sizes: tuple[int, int], target: int, limit: float,
          shrinkable: bool) -> tuple[int | None, _Shape, float, float]:
    """(side, its shape, the work after the epochs, the seconds left for them): the first
    of ``sides`` (largest first) whose ``target`` epochs fit ``limit`` after that work,
    else the last. Data in memory keeps its own size (None) while one epoch fits there
    (`_candidates`). Under a budget the probes after the first, which every plan takes,
    come off it: four more sides took 0.7 s of six shapes' --time 6s."""
    (device, probe), (batch, trained) = measure, sizes
    chosen, tail, probed = None, 0.0, None  # probed: when the last probe ended
    for side in sides:
        chosen = _measure(fp, config, device, probe, side, batch, trained)
        tail = _tail(fp, config, chosen, trained)
        now = time.perf_counter()
        if config.time and probed is not None:
            limit -= now - probed
        probed = now
        need = 1 if shrinkable and side is None else target
        if chosen.epoch_seconds is None or chosen.epoch_seconds * need <= limit - tail:
            break
    assert chosen is not None
    return side, chosen, tail, limit


def make_plan(fp: Fingerprint, config: TrainConfig, device: str, probe: Probe | None,
              budget: float | None = None, resizable: bool = False,
              shrinkable: bool = False) -> Plan:
    """Fill in every option of ``config`` left unset (None, ``auto``) from the fingerprint.

    Args:
        probe: measures seconds per image for (arch, input shape, classes, batch); None
            skips timing (no time estimate; the epochs then follow the data size alone).
        budget: seconds left for training when ``config.time`` is set.
        resizable: the images can be decoded at any size (folder data).
        shrinkable: the images are in memory and can be resampled smaller
            (`convnet.data.rescale`): under a budget, when not one epoch fits at their own
            size.
    """
    trained = trained_images(fp, config.val_split)
    choices: list[Choice] = []
    batch = config.batch_size or batch_for(trained, device)
    choices.append(Choice("batch_size", str(batch), "given" if config.batch_size else
                          f"~1/32 of {trained:,} images, within 16-{MOST_BATCH[device]}",
                          config.batch_size is not None))
    target = config.epochs or target_epochs(trained)
    # under a budget, the compiler's import comes off it where the process pays it
    limit = budget - compiler_import.unpaid() if config.time else DEFAULT_BUDGET[device]
    sides, why = _candidates(fp, config, device, resizable, config.time is not None,
                             shrinkable)
    side, chosen, tail, limit = _side(fp, config, (device, probe), sides, (batch, trained),
                                      target, limit, shrinkable)
    epochs, epochs_reason = _epochs(config, target, trained, chosen.epoch_seconds,
                                    limit - tail)
    height, width, _ = chosen.input_shape
    size_text = f"{height} px" if height == width else f"{height}×{width} px"
    if config.image_size is None and side != sides[0] and not resizable:
        why = (f"the images resampled from their own {min(fp.uniform or (0,))} px, where "
               f"not one epoch fits {human_seconds(limit)}")
    elif config.image_size is None and side != sides[0]:
        top = "the images' own size" if sides[0] is None else f"{sides[0]} px"
        why = f"{why}; {top} would not fit {human_seconds(limit)}"
    choices.insert(0, Choice("image_size", size_text, why, config.image_size is not None))
    choices.insert(1, _arch_choice(config, chosen))
    choices.append(Choice("epochs", str(epochs), epochs_reason, config.epochs is not None))
    choices += validation_choice(fp, config)
    planned = _training_options(fp, config, chosen, batch, epochs, trained, choices)
    planned = replace(planned, image_size=side)  # None: the data's own size
    seconds = None if chosen.epoch_seconds is None else chosen.epoch_seconds * epochs + tail
    most = epochs if config.epochs is not None or not config.time else 2 * target
    return Plan(fp, planned, choices, seconds, budget if config.time else None, device,
                max(most, epochs))


def _arch_choice(config: TrainConfig, chosen: _Shape) -> Choice:
    height, width, _ = chosen.input_shape
    if config.arch != "auto":
        return Choice("arch", chosen.arch if len(chosen.arch) < 24 else "a spec", "given",
                      True)
    if chosen.arch in PRESETS:
        return Choice("arch", f"{chosen.arch} preset", "measured best on small grayscale "
                      "images (digits)")
    stages = stages_for(min(height, width))
    return Choice("arch", f"{stages} conv stages", f"as deep as {min(height, width)} px "
                  "allows, then global average pooling")


def _epochs(config: TrainConfig, target: int, trained: int, epoch_seconds: float | None,
            limit: float) -> tuple[int, str]:
    if config.epochs is not None:
        return config.epochs, "given"
    reason = f"more passes for fewer images ({trained:,})"
    if epoch_seconds is None:
        return target, reason
    fits = int(limit // max(epoch_seconds, 1e-9))
    if config.time and fits > target:
        most = min(fits, 2 * target)
        return most, f"{most} fit the {human_seconds(limit)} left (the data asks {target})"
    if fits < target:
        return max(1, fits), (f"cut from {target} to fit {human_seconds(limit)} "
                              f"({human_seconds(epoch_seconds)} an epoch)")
    return target, reason


def _training_options(fp: Fingerprint, config: TrainConfig, chosen: _Shape, batch: int,
                      epochs: int, trained: int, choices: list[Choice]) -> TrainConfig:
    """Augmentation, learning rate and weight averaging, added to ``choices``."""
    side = min(chosen.input_shape[:2])
    augment = config.augment
    if augment == "auto":
        strong = fp.smallest_class < STRONG_BELOW and side >= 16
        augment = "strong" if strong else "light"
        reason = (f"{fp.smallest_class} images in the smallest class (< {STRONG_BELOW})"
                  if strong else "enough images per class" if side >= 16 else
                  f"{side} px is too small for crops and cutout")
    else:
        reason = "given"
    choices.append(Choice("augment", f"{augment} augmentation", reason,
                          config.augment != "auto"))
    lr = config.lr if config.lr is not None else \
        float(f"{DEFAULT_LR[config.optimizer] * math.sqrt(batch / 128):.3g}")
    choices.append(Choice("lr", f"{lr:.3g}", "given" if config.lr is not None else
                          f"{DEFAULT_LR[config.optimizer]:g} × sqrt(batch / 128)",
                          config.lr is not None))
    steps = math.ceil(trained / batch)
    ema = config.ema if config.ema is not None else min(0.999, max(0.5, 1 - 1 / steps))
    choices.append(Choice("ema", f"{ema:.3f}", "given" if config.ema is not None else
                          f"weights averaged over up to 1 epoch ({steps} steps)",
                          config.ema is not None))
    return replace(config, arch=chosen.arch, epochs=epochs, batch_size=batch, lr=lr, ema=ema,
                   augment=augment)


def decide_flips(plan: Plan, check: MirrorCheck | None) -> Plan:
    """Set ``flip`` (and so flip test-time averaging) from the mirror check of the images."""
    config = plan.config
    if config.flip is not None:
        plan.choices.append(Choice("flip", "flips" if config.flip else "no flips", "given",
                                   True))
        return plan
    if config.augment == "none":
        flips, reason = False, "augment none"
    else:
        flips = True if check is None else check.flips_ok
        reason = "no images to check" if check is None else check.reason()
    plan.choices.append(Choice("flip", "flips" if flips else "no flips", reason))
    plan.config = replace(config, flip=flips)
    return plan
