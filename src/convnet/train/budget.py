"""Holding a run to its time budget (``time``): after each epoch, the epochs still to come
are cut to those that fit the time left, and the learning-rate schedule is re-planned over
the new total, so the run still anneals and ends, with its best weights, by the deadline."""

from __future__ import annotations

import time
from collections.abc import Sequence

from convnet.train.callbacks import Callback, EpochStats
from convnet.train.config import TrainConfig
from convnet.train.loop import Loop
from convnet.train.optim import schedule_from


class Budget(Callback):
    """Fits ``loop.epochs`` to ``deadline`` (a `time.perf_counter` value) by the measured
    epoch time: cut at any epoch, raised up to ``most`` in the first two (while the
    schedule still warms up, so raising it changes nothing already done)."""

    def __init__(self, loop: Loop, config: TrainConfig, deadline: float, most: int,
                 listeners: Sequence[Callback] = ()):
        self.loop, self.config, self.deadline = loop, config, deadline
        self.listeners = listeners  # told of every change: the progress display, the log
        self.most = max(most, loop.epochs)
        self.durations: list[float] = []

    def on_epoch_start(self, epoch: int) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, stats: EpochStats) -> None:
        self.durations.append(time.perf_counter() - self.started)
        early = stats.epoch <= 2
        # early, the latest epoch (the first carries the warm-up, which would undercount
        # the epochs that fit); later, the slower of the last two, to keep a margin
        epoch_seconds = self.durations[-1] if early else max(self.durations[-2:])
        left = self.deadline - time.perf_counter()
        fits = stats.epoch + max(0, int(left // epoch_seconds))
        planned = self.loop.epochs
        wanted = min(fits, self.most) if early else min(fits, planned)
        if wanted == planned:
            return
        self.loop.epochs = wanted
        for listener in self.listeners:
            listener.on_epochs(wanted)
        if wanted <= stats.epoch:
            self.notify(f"time budget reached after epoch {stats.epoch} of {planned}: "
                        "training stops with the best weights so far")
            return
        self._replan()
        if wanted < planned:
            self.notify(f"time budget: epochs cut from {planned} to {wanted} "
                        f"({epoch_seconds:.1f} s an epoch, {max(left, 0):.0f} s left); the "
                        "learning rate anneals over them")

    def notify(self, line: str) -> None:
        for listener in self.listeners:
            listener.on_notice(line)

    def _replan(self) -> None:
        """The schedule over the new total, stepped on to where the run stands."""
        state = self.loop.state
        state.scheduler = schedule_from(state.optimizer, self.config,
                                        self.loop.batches.steps * self.loop.epochs, state.step)
