"""Holding a run to its time budget (``time``): after each epoch, the epochs still to come
are cut to those that fit the time left, and the learning-rate schedule is re-planned over
the new total, so the run still anneals and ends, with its best weights, by the deadline."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

from convnet.train.callbacks import Callback, EpochStats
from convnet.train.config import TrainConfig
from convnet.train.loop import Loop
from convnet.train.optim import make_schedule


class Budget(Callback):
    """Cuts ``loop.epochs`` to what fits before ``deadline`` (a `time.perf_counter` value)."""

    def __init__(self, loop: Loop, config: TrainConfig, deadline: float,
                 notify: Callable[[str], None]):
        self.loop, self.config, self.deadline, self.notify = loop, config, deadline, notify
        self.slowest = 0.0

    def on_epoch_start(self, epoch: int) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, stats: EpochStats) -> None:
        self.slowest = max(self.slowest, time.perf_counter() - self.started)
        left = self.deadline - time.perf_counter()
        fits = int(left // self.slowest) if self.slowest > 0 else self.loop.epochs
        planned = self.loop.epochs
        if stats.epoch + fits >= planned:
            return
        self.loop.epochs = stats.epoch + max(0, fits)
        if fits > 0:
            self._replan()
            self.notify(f"time budget: epochs cut from {planned} to {self.loop.epochs} "
                        f"({self.slowest:.1f} s an epoch, {max(left, 0):.0f} s left); the "
                        "learning rate anneals over them")
        else:
            self.notify(f"time budget reached after epoch {stats.epoch} of {planned}: "
                        "training stops with the best weights so far")

    def _replan(self) -> None:
        """The schedule over the new total, stepped on to where the run stands."""
        state, steps = self.loop.state, self.loop.batches.steps
        with warnings.catch_warnings():  # stepping a schedule without optimizer steps
            warnings.simplefilter("ignore")
            schedule = make_schedule(state.optimizer, self.config, steps * self.loop.epochs)
            for _ in range(state.step):
                schedule.step()
        state.scheduler = schedule
