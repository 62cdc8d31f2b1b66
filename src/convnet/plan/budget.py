"""Holding a run to its time budget (``time``): after each epoch, the epochs still to come
are cut to those that fit the time left, and the learning-rate schedule is re-planned over
the new total, so the run still anneals and ends, with its best weights, by the deadline."""

from __future__ import annotations

import time
from collections.abc import Sequence

from convnet.training.callbacks import Callback, EpochStats
from convnet.training.config import TrainConfig
from convnet.training.loop import Loop
from convnet.training.optim import schedule_from


class Budget(Callback):
    """Fits the run's epochs to ``deadline`` (a `time.perf_counter` value) by the measured
    epoch time: cut at any epoch, raised up to ``most`` in the first two (while the
    schedule still warms up, so raising it changes nothing already done). The loop asks
    (`epochs_after`) and makes the change; this re-plans the learning-rate schedule."""

    def __init__(self, loop: Loop, config: TrainConfig, deadline: float, most: int,
                 listeners: Sequence[Callback] = ()):
        self.loop, self.config, self.deadline = loop, config, deadline
        self.listeners = listeners  # told what changed and why: the progress display, the log
        self.most = max(most, loop.epochs)
        self.durations: list[float] = []

    def on_epoch_start(self, epoch: int) -> None:
        self.started = time.perf_counter()

    def epochs_after(self, stats: EpochStats, epochs: int) -> int:
        self.durations.append(time.perf_counter() - self.started)
        early = stats.epoch <= 2
        # early, the latest epoch (the first carries the warm-up, which would undercount
        # the epochs that fit); later, the slower of the last two, to keep a margin
        epoch_seconds = self.durations[-1] if early else max(self.durations[-2:])
        left = self.deadline - time.perf_counter()
        fits = stats.epoch + max(0, int(left // epoch_seconds))
        planned = epochs
        wanted = min(fits, self.most) if early else min(fits, planned)
        if wanted == planned:
            return planned
        if wanted <= stats.epoch:
            self.notify(f"time budget reached after epoch {stats.epoch} of {planned}: "
                        "training stops with the best weights so far")
            return wanted
        self._replan(wanted)
        if wanted < planned:
            self.notify(f"time budget: epochs cut from {planned} to {wanted} "
                        f"({epoch_seconds:.1f} s an epoch, {max(left, 0):.0f} s left); the "
                        "learning rate anneals over them")
        return wanted

    def notify(self, line: str) -> None:
        for listener in self.listeners:
            listener.on_notice(line)

    def _replan(self, epochs: int) -> None:
        """The schedule over the new total, stepped on to where the run stands."""
        state = self.loop.state
        state.scheduler = schedule_from(state.optimizer, self.config,
                                        self.loop.batches.steps * epochs, state.step)
