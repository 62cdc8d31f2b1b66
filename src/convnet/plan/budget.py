"""Holding a run to its time budget (``time``): after each epoch, the epochs still to come
are cut to those that fit the time left, and the learning-rate schedule is re-planned over
the new total, so the run still anneals and ends, with its best weights, by the deadline.

The budget is the whole command's, so what follows the epochs is kept from it, estimated
from the epochs' own validation passes (`Budget.timed`): the images scored in fp32 as the
run ends (the test score, the calibration and the "unknown" detector's validation images;
the report drawn next reuses those logits: `TAIL_PASSES`), the detector's training images
at the training's precision, and the files written (`FILES_SECONDS`).
The report is not kept from it: it is drawn when time is left (`REPORT_SECONDS`), and a
budget's time goes to the network first."""

from __future__ import annotations

import time
from collections.abc import Sequence

from convnet.plan.freezing import FORWARD_SHARE
from convnet.runs.calibration import FEWEST
from convnet.runs.unknown import FIT_MOST
from convnet.training.callbacks import Callback, EpochStats
from convnet.training.config import TrainConfig, parse_time
from convnet.training.distributed import broadcast
from convnet.training.loop import Loop, Scorer
from convnet.training.optim import schedule_from

# each evaluated split is scored as the run ends; the report drawn next reuses those logits
TAIL_PASSES = 1
FILES_SECONDS = 0.5  # writing the run (0.07 s for an EfficientNet-Lite0 run here)
REPORT_SECONDS = 3.0  # the report's pictures
# a change of the epochs is said when it moves them this share (at least one epoch) from
# what was said last: epochs of hundredths of a second were cut by one or two after each,
# 33 notes in a 5 s run; the live display and the epoch lines show every total anyway
SAID_SHARE = 0.25


def scored_after(val: int, test: int, train: int) -> tuple[int, int]:
    """Images the network sees after the epochs, per view: (the validation and test splits,
    scored in fp32 as the run ends, the report reusing their logits; the "unknown"
    detector's training images, embedded at the training's precision, and only where it
    is fitted: on `FEWEST` validation images or more)."""
    fit = min(train, FIT_MOST) if val >= FEWEST else 0
    return (val + test) * TAIL_PASSES, fit


def after_seconds(scored: tuple[int, int], fp32: float, seen: float | None = None) -> float:
    """Seconds of the work after the epochs: the images of ``scored`` (`scored_after`) at
    ``fp32`` and ``seen`` (the training's precision; ``fp32`` where not given) seconds
    each, every view counted in them, and the files written. The one rule the plans and
    the callback estimate it by."""
    honest, fitted = scored
    return fp32 * honest + (fp32 if seen is None else seen) * fitted + FILES_SECONDS


class Budget(Callback):
    """Fits the run's epochs to ``deadline`` (a `time.perf_counter` value) by the measured
    epoch time: cut at any epoch, raised up to ``most`` in the first two (while the
    schedule still warms up, so raising it changes nothing already done), keeping half an
    epoch spare. The loop asks (`epochs_after`) and makes the change; this re-plans the
    learning-rate schedule."""

    def __init__(self, loop: Loop, config: TrainConfig, deadline: float, most: int,
                 listeners: Sequence[Callback] = (), scored: tuple[int, int] | None = None):
        self.loop, self.config, self.deadline = loop, config, deadline
        self.listeners = listeners  # told what changed and why: the progress display, the log
        self.most = max(most, loop.epochs)
        self.durations: list[float] = []
        # images scored after the epochs (`scored_after`): None where nothing is
        self.scored = scored
        # seconds per validation image of the epochs' passes, in fp32 (True) and at the
        # training's precision (False); the first pass is fp32 (`timed`)
        self.per_image: dict[bool, float] = {}
        # seconds kept for the work after the epochs, from the epochs' passes
        self.tail: float = 0.0
        self.said = loop.epochs  # the total the last note gave (the plan's at first)

    def on_epoch_start(self, epoch: int) -> None:
        self.started = time.perf_counter()

    def epochs_after(self, stats: EpochStats, epochs: int) -> int:
        self.durations.append(time.perf_counter() - self.started)
        early = stats.epoch <= 2
        # early, the latest epoch (the first carries the warm-up, which would undercount
        # the epochs that fit); later, the slower of the last two, to keep a margin
        epoch_seconds = self.durations[-1] if early else max(self.durations[-2:])
        if self.scored is not None:
            self.tail = self._tail(stats)
        left = self.deadline - self.tail - time.perf_counter()
        fits = stats.epoch + max(0, int(left // epoch_seconds))
        planned = epochs
        wanted = min(fits, planned)
        if early and fits > planned:
            # a raise keeps half an epoch spare: a raised epoch cut again later stops the
            # run before its learning rate has annealed
            spared = stats.epoch + max(0, int((left - epoch_seconds / 2) // epoch_seconds))
            wanted = max(planned, min(spared, self.most))
        # under torchrun each rank times its own epochs; ranks that chose different totals
        # would each wait for ever on the other's next collective, so rank 0's is every one's
        wanted = broadcast(wanted)
        if wanted == planned:
            return planned
        if wanted <= stats.epoch:
            self.notify(f"time budget reached after epoch {stats.epoch} of {planned}: "
                        "training stops with the best weights so far")
            return wanted
        self._replan(wanted)
        if abs(wanted - self.said) >= max(1.0, SAID_SHARE * self.said):
            self.notify(f"time budget: epochs {'cut' if wanted < self.said else 'raised'} "
                        f"from {self.said} to {wanted} ({_short(epoch_seconds)} s an epoch, "
                        f"{max(left, 0):.0f} s left); the learning rate anneals over them")
            self.said = wanted
        return wanted

    def timed(self, score: Scorer) -> Scorer:
        """``score`` timed per image, its first pass made as the run ends (fp32, the run's
        views) and the others at the training's precision, as they were: the work after
        the epochs is estimated from both. The epoch's time less its steps' time, used
        before, is the difference of two near-equal figures: it put the work after six
        64 px shapes' epochs at 2.7 s, where 7.6 s were measured."""
        def score_timed(network, split, honest: bool = False):
            honest = honest or not self.per_image
            started = time.perf_counter()
            scores = score(network, split, honest)
            # in fp32 every pass is of both kinds
            for kind in (True, False) if self.loop.autocast_dtype is None else (honest,):
                self.per_image[kind] = (time.perf_counter() - started) / max(len(split), 1)
            return scores
        return score_timed

    def _tail(self, stats: EpochStats) -> float:
        """Seconds the work after the epochs will take: the validation passes' time per
        image (the fp32 one where the training's is not measured yet), else a forward
        pass's share of a step; and the files."""
        fallback = FORWARD_SHARE / max(stats.images_per_s, 1e-9)
        fp32 = self.per_image.get(True, fallback)
        return after_seconds(self.scored or (0, 0), fp32, self.per_image.get(False))

    def notify(self, line: str) -> None:
        for listener in self.listeners:
            listener.on_notice(line)

    def _replan(self, epochs: int) -> None:
        """The schedule over the new total, stepped on to where the run stands."""
        state = self.loop.state
        state.scheduler = schedule_from(state.optimizer, self.config,
                                        self.loop.batches.steps * epochs, state.step)


def _short(seconds: float) -> str:
    """Seconds to two significant digits under one (0.031), one decimal above (2.4)."""
    return f"{seconds:.2g}" if seconds < 1 else f"{seconds:.1f}"


def time_left(budget: str | None, started: float) -> float | None:
    """Seconds of the command's ``time`` budget (e.g. ``"90s"``) left since ``started``
    (a `time.perf_counter` value); None without a budget."""
    if budget is None:
        return None
    return parse_time(budget) - (time.perf_counter() - started)
