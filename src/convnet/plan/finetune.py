"""The plan for fine-tuning trained weights (``init``): image size, batch, epochs, learning
rate, augmentation and weight averaging, from the data and this machine's measured speed.

- image size: the largest of `SIDES` whose epochs fit the budget (without --time,
  `untimed_limit`: 90 s on a CPU at 1,000 training images), measured with the probe;
  trained weights see the photo at its own scale, so the images' detail does not cap it as
  it does from scratch;
- epochs: 3 at 1,000 training images, more for fewer (3·sqrt(1000/n), 3..12), cut to fit;
- batch 32 (64 on a GPU), lr 5e-4 for the head at batch 32 scaled with sqrt(batch/32), the
  body at `body_lr` of it; light augmentation (shifts and flips): with a few epochs from
  trained features, strong augmentation costs more than it gives (bench/RESULTS.md);
- patience: the run stops `PATIENCE` epochs after its best validation score. From trained
  features a small folder's best epoch comes early (the second of 7 on 246 photos; the
  rest only fit the training images harder), and the kept epoch is the same with or
  without the stop (bench/RESULTS.md, "finetune patience").
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

from convnet.data.fingerprint import Fingerprint
from convnet.plan import freezing
from convnet.plan.budget import FILES_SECONDS
from convnet.plan.cost import estimate, shape_of
from convnet.plan.freezing import SIDE_FLOOR, Freeze
from convnet.plan.planner import (
    DEFAULT_BUDGET,
    Choice,
    PassProbe,
    Plan,
    Probe,
    human_seconds,
    trained_images,
    validation_choice,
)
from convnet.training.config import FINETUNE_BATCH, FINETUNE_LR, TrainConfig

SIDES = (96, 128, 160, 192, 224)
BATCH = {"cpu": 32, "cuda": 64}
# without --time, the features and epochs aim at this share of `DEFAULT_BUDGET` at 1,000
# training images, growing with the square root of their count (`untimed_limit`), within
# `UNTIMED_SHARES`
UNTIMED_SHARE = 0.3
UNTIMED_SHARES = (0.13, 0.47)
# a no-option photo fine-tune's whole command (`default_time`), as a share of
# `DEFAULT_BUDGET` at 1,000 training images, growing as sqrt(n) up to all of it
COMMAND_SHARE = 0.37
COMMAND_FLOOR = 30.0  # seconds: start-up, decoding and scoring take some whatever the folder
PATIENCE = 2  # epochs without a better validation score before the run stops
# under a deadline, the head alone's estimate must fit with this share to spare: its passes
# have no epochs to cut as they run late, and the probes they are estimated from spread by
# 11-12% (one standard deviation: EfficientNet-Lite0 at 192 px, 3.5-4.9 ms per image in
# bf16 and 6.0-9.0 in fp32 over eight fresh processes here). The largest side whose
# estimate fits is the one a low reading let in: cat/dog photos planned at 192 px to fit
# 15 s ended 2.5-4.7 s past a 23 s --time. With the estimate 1.03-1.10 of the real time on
# average ("finetune estimate"), this share spares about 1.3 deviations; 0.15 cost four
# classes of 120 photos a side (96 px where 128 px had ended within --time 14s), 2.5
# points (bench/HISTORY.md, "The head alone's deadline")
ALONE_SPREAD = 0.10


def untimed_limit(device: str, trained: int) -> float:
    """Seconds the features, epochs and the scoring after them aim at without --time:
    `UNTIMED_SHARE` of the default budget at 1,000 training images (90 s on a CPU), times
    sqrt(trained / 1000).

    The planned epochs (`finetune_epochs`: 3·sqrt(1000/n)) see 3·sqrt(1000·n) images, so a
    budget that grows as sqrt(n) keeps a folder's image side and network whatever its size.
    A share, not the whole default, measured against 0.7 of it for every folder
    (bench/RESULTS.md, "finetune no-options", commit 1df9f02, when the estimate was ~1.8×
    the real time and this share 0.45): cat/dog photos 83.25% in 98.2 s (Lite2 at 128 px)
    against 83.25% in 173.2 s; six classes of 246 photos 71.00% in 48.2 s against 72.67% in
    75.0 s; four classes 90.00% in 61.0 s against 93.00% in 157.3 s. A longer --time buys
    the rest back. With the estimate corrected ("finetune estimate"), 0.3 plans those
    folders as 0.45 did, within a step of image side or frozen layers."""
    low, high = UNTIMED_SHARES
    return DEFAULT_BUDGET[device] * min(high, max(low, _grown(UNTIMED_SHARE, trained)))


def default_time(device: str, trained: int) -> float:
    """Seconds a photo folder's no-option fine-tune is given for its whole command, as
    ``--time`` would (`convnet.plan.choose`): `COMMAND_SHARE` of the default budget at 1,000
    training images, times sqrt(trained / 1000) as `untimed_limit` grows, from
    `COMMAND_FLOOR` to the whole default.

    Why a deadline, where a run with ``init`` alone is planned to `untimed_limit`: the
    plan's estimate comes from speed probes that vary by half from one process to the next
    (bench/RESULTS.md, "finetune no-options": the same folder took 48 s, then 62 s), and a
    deadline holds the command whatever they said, cutting epochs as it goes. 111 s at
    1,000 images halves the issue's no-option times (102.6 s for 246 photos, 210.2 s for
    1,000)."""
    return max(COMMAND_FLOOR, DEFAULT_BUDGET[device] * min(1.0, _grown(COMMAND_SHARE, trained)))


def _grown(share: float, trained: int) -> float:
    """``share`` (of the default budget, at 1,000 training images) for ``trained`` images:
    times sqrt(trained / 1000), as the planned epochs' images grow (`untimed_limit`)."""
    return share * math.sqrt(max(1, trained) / 1000)


def finetune_epochs(trained: int) -> int:
    return int(min(12, max(3, round(3 * math.sqrt(1000 / max(1, trained))))))


def make_finetune_plan(fp: Fingerprint, config: TrainConfig, device: str,
                       probe: Probe | None, budget: float | None = None,
                       resizable: bool = False, passes: PassProbe | None = None,
                       since: tuple[int, bool] | None = None) -> Plan:
    """Fill in the options of ``config`` left unset, for a run that starts from ``init``.
    ``passes``: the forward-pass probe, for the head alone's estimate (`estimate`).
    ``since``: (frozen layers, the head alone) as a plan for the same data at the same side
    chose with more time left: the options before that one did not fit then, so they
    cannot now, and are not weighed again (each costs a speed probe at the side)."""
    trained = trained_images(fp, config.val_split)
    batch = config.batch_size or min(BATCH[device], max(1, trained))
    target = finetune_epochs(trained) if config.epochs is None else config.epochs
    limit = budget if config.time else untimed_limit(device, trained)
    began = time.perf_counter()
    fit = _fit(fp, config, (probe, passes), resizable, batch, trained, target, limit, since)
    spent = time.perf_counter() - began  # the speed probes' own time
    if config.time and fit.seconds is not None and \
            fit.seconds > _room(config, fit.freeze, limit - spent):
        # the budget was taken before the probes ran: again with their time off it (the
        # probes measured are cached, so this costs little more)
        limit -= spent
        fit = _fit(fp, config, (probe, passes), resizable, batch, trained, target, limit,
                   since)
    freeze, side, seconds, why = fit.freeze, fit.side, fit.seconds, fit.why
    epochs = 0 if freeze.alone else target
    if config.epochs is None and not freeze.alone and seconds is not None and seconds > limit:
        epochs = max(1, math.floor(target * limit / seconds))
    lr = config.lr if config.lr is not None else \
        float(f"{FINETUNE_LR[config.optimizer] * math.sqrt(batch / FINETUNE_BATCH):.3g}")
    steps = math.ceil(trained / batch)
    ema = config.ema if config.ema is not None else min(0.999, max(0.5, 1 - 1 / steps))
    planned = replace(config, image_size=side, epochs=epochs, batch_size=batch, lr=lr,
                      ema=ema, augment="light" if config.augment == "auto" else config.augment,
                      frozen_layers=freeze.layers, patience=_patience(config, epochs))
    choices = _choices(config, planned, device, trained, target, limit, steps, why) + \
        [fit.choice(config), _patience_choice(config, planned)] + validation_choice(fp, config)
    total = None if seconds is None else seconds if freeze.alone else seconds * epochs / target
    pressed = epochs < target or freeze != fit.default
    return Plan(fp, planned, choices, total, budget if config.time else None, device,
                epochs if config.epochs is not None or not config.time or freeze.alone
                else 2 * target,
                pressed)


def _patience(config: TrainConfig, epochs: int) -> int | None:
    """`PATIENCE`, unless given, or the run is too short for it to stop anything."""
    if config.patience is not None:
        return config.patience
    return PATIENCE if epochs > PATIENCE + 1 else None


def _patience_choice(config: TrainConfig, planned: TrainConfig) -> Choice:
    given = config.patience is not None
    value = "none" if planned.patience is None else f"{planned.patience} epochs"
    why = "given" if given else \
        f"{planned.epochs} epochs: too few to stop early" if planned.patience is None else \
        "stop once that many epochs pass without a better validation score: from trained " \
        "features the best epoch often comes early (bench/RESULTS.md)"
    return Choice("patience", value, why, given)


@dataclass(frozen=True)
class Fit:
    """The layers frozen and the image side, with the seconds estimated at them."""

    freeze: Freeze
    side: int | None
    seconds: float | None
    why: str  # of the side
    default: Freeze  # what is frozen when the budget does not press
    candidates: int  # layers before the head
    fits: bool = True  # the planned epochs fit at SIDE_FLOOR px or more

    def choice(self, config: TrainConfig) -> Choice:
        given = config.frozen_layers is not None
        why = "given" if given else "epochs=0: the head alone, on features computed once" \
            if config.epochs == 0 else freezing.reason(self.freeze, self.default, self.fits)
        return Choice("frozen_layers", f"{self.freeze.layers} of {self.candidates} layers",
                      why, given)


Probes = tuple[Probe | None, PassProbe | None]  # a training step's, a forward pass's


def _fit(fp: Fingerprint, config: TrainConfig, probes: Probes, resizable: bool,
         batch: int, trained: int, target: int, limit: float,
         since: tuple[int, bool] | None = None) -> Fit:
    """The fewest frozen layers (from the default, or from ``since``) whose planned epochs
    fit ``limit`` at a side of at least `SIDE_FLOOR`; when none does, the one that keeps
    the largest side."""
    side = config.image_size or (SIDES[0] if resizable else None)
    options, head = _options(config, shape_of(fp, side), fp.classes)
    default = options[0]
    if _no_epochs_fit(fp, config, probes, side, batch, trained, target, limit, options):
        options = options[-1:]  # the head alone, without a training step probed
    best: tuple[tuple[int, float], Fit] | None = None
    for freeze in options:
        if since is not None and freeze is not options[-1] and \
                (freeze.layers < since[0] or since[1] and not freeze.alone):
            continue
        room = _room(config, freeze, limit)
        side, seconds, why = _side(fp, config, probes, resizable, batch, trained,
                                   0 if freeze.alone else target, room, freeze.step_factor)
        fit = Fit(freeze, side, seconds, why, default, head)
        if seconds is None or seconds <= room and (side is None or side >= SIDE_FLOOR
                                                   or config.image_size is not None):
            return fit
        key = (side or 0, -seconds)
        if best is None or key > best[0]:
            best = (key, replace(fit, fits=False))
    return best[1]


def _room(config: TrainConfig, freeze: Freeze, limit: float) -> float:
    """The seconds ``freeze``'s estimate may take of ``limit``: under a deadline, the head
    alone keeps `ALONE_SPREAD` of its estimate spare."""
    return limit / (1 + ALONE_SPREAD) if config.time and freeze.alone else limit


def _no_epochs_fit(fp: Fingerprint, config: TrainConfig, probes: Probes, side: int | None,
                   batch: int, trained: int, target: int, limit: float,
                   options: list[Freeze]) -> bool:
    """Whether, under a budget, no option with epochs can fit ``limit`` even at the
    smallest ``side``, judged without probing a training step: each costs at least the head
    alone's passes (less one view of the training images) and, every epoch after the
    first, a forward pass over each training image (the frozen layers run too). A step's
    probe costs 0.4-1.7 s here (and where the compiler's import is not deferred, its
    first step imports torch's compiler, 1.0-1.9 s): seconds a short budget needs."""
    probe, passes = probes
    if not config.time or probe is None or passes is None or len(options) < 2 or \
            not options[-1].alone:
        return False
    alone = estimate(fp, config, probe, side, batch, trained, alone=True, passes=passes)
    forward = passes(config.arch, shape_of(fp, side), fp.classes, False)
    return alone.seconds(0) + (target - 1) * trained * forward > limit


def _options(config: TrainConfig, shape: tuple[int, int, int], classes: int
             ) -> tuple[list[Freeze], int]:
    """The frozen-layer counts the plan weighs: the head alone last, and only where the
    epochs are not given (``epochs=0`` asks for it alone)."""
    if config.epochs == 0:
        options, head = freezing.options(config.arch, shape, classes)
        return options[-1:], head
    return freezing.options(config.arch, shape, classes, config.frozen_layers,
                            alone=config.epochs is None)


def _side(fp: Fingerprint, config: TrainConfig, probes: Probes, resizable: bool,
          batch: int, trained: int, target: int, limit: float, factor: float
          ) -> tuple[int | None, float | None, str]:
    """(image side, estimated seconds at it, why): the largest side that fits ``limit``,
    else the smallest. Probed from the largest down: a small folder's plan fits at the
    first, and each probe of EfficientNet-Lite2 costs seconds. When the largest does not
    fit, the sides whose pixels scaled from its time (`_skipped`) do not fit either are
    not probed: a small side costs more per pixel, never less. Under a budget the smallest
    is probed first, and the sides may go up from it instead (`_upward`)."""
    sides = [config.image_size] if config.image_size else \
        list(SIDES) if resizable else [None]
    if config.time and len(sides) > 1 and probes[0] is not None:
        upward = _upward(fp, config, probes, sides, batch, trained, target, limit, factor)
        if upward is not None:
            return upward
    side, seconds, largest = sides[0], None, None
    for candidate in reversed(sides):
        if _skipped(largest, candidate, limit):
            continue
        side = candidate
        cost = estimate(fp, config, probes[0], candidate, batch, trained, factor,
                        alone=not target, passes=probes[1])
        seconds = None if cost is None else cost.seconds(target)
        if seconds is None or seconds <= limit:
            break
        largest = largest or (candidate, seconds)
    why = "given" if config.image_size else \
        "the smallest: the planned epochs do not fit the budget even at it" \
        if seconds is not None and seconds > limit and len(sides) > 1 else \
        "the largest that fits the budget" if seconds is not None else \
        "the images' own size" if side is None else "the default without a speed probe"
    return side, seconds, why


def _upward(fp: Fingerprint, config: TrainConfig, probes: Probes, sides: list[int],
            batch: int, trained: int, target: int, limit: float, factor: float
            ) -> tuple[int, float, str] | None:
    """Under a budget, the sides probed from the smallest up, to the last that fits, where
    the smallest's time scaled by the side (a larger side costs less per pixel, about as
    much per side) says the largest will not fit, or for the head alone (``target`` 0);
    None where it may (then `_side` probes from the largest down). A step's probe at 224
    px costs 3 s of a short budget, one at 96 px 0.6 s. Which way changes the probes
    taken, not the side found."""
    began, probed = time.perf_counter(), [0.0]  # the last probe's seconds

    def seconds(side: int) -> float:
        start = time.perf_counter()
        found = estimate(fp, config, probes[0], side, batch, trained, factor,
                         alone=not target, passes=probes[1]).seconds(target)
        probed[0] = time.perf_counter() - start
        return found

    side, taken = sides[0], seconds(sides[0])
    if target and taken * sides[-1] / side <= limit:
        # the head alone's passes grow faster than the side (x3.4-3.6 from 96 to 224 px
        # here), and its probes cost 0.5 s a side: it always goes up
        return None
    if taken > limit:
        return side, taken, "the smallest: the planned epochs do not fit the budget even at it"
    for candidate in sides[1:]:
        # not probed where, scaled by the side from the last (which underestimates a
        # larger side), it could not fit what its own probe and the probes so far leave
        grow = candidate / side
        scaled = (taken - FILES_SECONDS) * grow + FILES_SECONDS
        if scaled > limit - (time.perf_counter() - began) - probed[0] * grow:
            break
        more = seconds(candidate)
        if more > limit:
            break
        side, taken = candidate, more
    return side, taken, "the largest that fits the budget"


def _skipped(largest: tuple[int, float] | None, side: int | None, limit: float) -> bool:
    """Whether ``side`` cannot fit ``limit``, judged by the largest side probed (side,
    seconds) scaled by pixels; the smallest side is always probed (it is the fallback)."""
    if largest is None or side is None or side == SIDES[0]:
        return False
    return largest[1] * (side / largest[0]) ** 2 > limit


def _choices(config: TrainConfig, planned: TrainConfig, device: str, trained: int,
             target: int, limit: float, steps: int, why: str) -> list[Choice]:
    """Each choice of the plan, what it is and why."""
    side, epochs, lr = planned.image_size, planned.epochs, planned.lr
    return [
        Choice("image_size", f"{side} px" if side else "the data's own size", why,
               config.image_size is not None),
        Choice("arch", config.arch if len(config.arch) < 24 else "the run's network",
               f"the network init={config.init} was trained as"),
        Choice("batch_size", str(planned.batch_size), "given" if config.batch_size else
               f"fine-tuning on {device.upper()}", config.batch_size is not None),
        Choice("epochs", str(epochs), "given" if config.epochs is not None else
               "the head alone: no epochs after it (frozen-layers says why)" if epochs == 0
               else f"3·sqrt(1000/{trained:,} images), within 3-12"
               + ("" if epochs == target else f", cut to fit {human_seconds(limit)}"),
               config.epochs is not None),
        Choice("augment", f"{planned.augment} augmentation", "given"
               if config.augment != "auto" else "a few epochs from trained features",
               config.augment != "auto"),
        Choice("lr", f"{lr:.3g}", "given" if config.lr is not None else
               f"{FINETUNE_LR[config.optimizer]:g} × sqrt(batch / {FINETUNE_BATCH}) for the "
               "head, 0.2 of it for the body", config.lr is not None),
        Choice("ema", f"{planned.ema:.3f}", "given" if config.ema is not None else
               f"weights averaged over up to 1 epoch ({steps} steps)", config.ema is not None),
    ]
