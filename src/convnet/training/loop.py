"""The training loop: epochs of steps over resident batches, keeping the best epoch.

It reads top to bottom as named steps. It knows nothing of run folders: validation scoring
comes in as a function (`Scorer`), and whatever must happen after each epoch (metrics
files, checkpoints, progress bars) attaches as a callback. So do the decisions to stop
(`convnet.training.callbacks.EarlyStopping`, a signal) and to change the number of epochs
(a time budget): the loop asks its callbacks, and nothing outside it sets its attributes.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from convnet.data.dataset import Split
from convnet.errors import Interrupted, TrainingError
from convnet.training import compiler_import
from convnet.training.batches import Batches
from convnet.training.callbacks import Callback, EpochStats
from convnet.training.distributed import sum_all
from convnet.training.speed import autocast
from convnet.training.state import Progress, TrainState

log = logging.getLogger("convnet")


class Scores(Protocol):
    loss: float
    accuracy: float


Scorer = Callable[[nn.Module, Split], Scores]  # (network to score, split) -> its scores


class Loop:
    """Runs the epochs of one training run over ``state`` and ``batches``."""

    def __init__(self, state: TrainState, batches: Batches, forward: nn.Module,
                 autocast_dtype: torch.dtype | None, label_smoothing: float, epochs: int):
        self.state, self.batches, self.forward = state, batches, forward
        self.autocast_dtype, self.label_smoothing, self.epochs = \
            autocast_dtype, label_smoothing, epochs

    def learn(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward, loss, backward and the optimizer's step at its current learning rate;
        returns the loss and the number of correct guesses (on the device, so that nothing
        waits for them). The lr range test takes its steps here too."""
        with autocast(x.device, self.autocast_dtype):
            logits = self.forward(x)  # (B, classes)
        loss = F.cross_entropy(logits.float(), y, weight=self.batches.loss_weights,
                               label_smoothing=self.label_smoothing)
        self.state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        compiler_import.step(self.state.optimizer)  # no compiler imported by a step
        return loss.detach(), (logits.argmax(1) == y).sum()

    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One training step: `learn`, then the schedule and the moving average move on."""
        state = self.state
        loss, hits = self.learn(x, y)
        state.scheduler.step()
        if state.ema is not None:
            state.ema.step(state.network, state.step)
        state.step += 1
        return loss, hits

    def _start(self, number: int) -> tuple[torch.Tensor, int, torch.Tensor, torch.Tensor, int]:
        """(order, first step, loss sum, correct count, images seen) for epoch ``number``:
        fresh, or where a restored mid-epoch state left it."""
        device, progress = self.batches.device, self.state.progress
        if progress is not None and progress.epoch == number:
            return (progress.order.to(device), progress.done,
                    progress.loss_sum.to(device).clone(), progress.correct.to(device).clone(),
                    progress.seen)
        order = self.batches.order(self.state.order_generator or self.state.generator)  # (N,)
        return (order, 0, torch.zeros((), device=device),
                torch.zeros((), device=device, dtype=torch.long), 0)

    def epoch(self, number: int, callbacks: Sequence[Callback]) -> tuple[float, float, float]:
        """One pass over the training split (or the rest of one); returns (mean loss,
        accuracy, images/s). Raises `Interrupted` after a whole step once a callback asks
        to stop (`Callback.stop_after_step`), with the state's ``progress`` saying where the
        epoch stands."""
        state, batches = self.state, self.batches
        state.network.train()
        order, first, loss_sum, correct, seen = self._start(number)
        batches.timer.reset()
        start, seen_before = time.perf_counter(), seen
        report_every = max(1, batches.steps // 50)  # ~50 progress updates per epoch
        for step in range(first, batches.steps):
            x, y = batches.batch(order, step, state.generator)
            loss, hits = self.step(x, y)
            loss_sum += loss * len(y)
            correct += hits
            seen += len(y)
            state.progress = Progress(number, order, step + 1, loss_sum, correct, seen)
            if (step + 1) % report_every == 0 or step + 1 == batches.steps:
                self._check_finite(float(loss_sum), number, step + 1, report_every)
                rate = (seen - seen_before) / max(time.perf_counter() - start, 1e-9)
                for callback in callbacks:
                    callback.on_step(number, step + 1, float(loss_sum) / seen,
                                     int(correct) / seen, rate)
            reason = _first(callback.stop_after_step() for callback in callbacks)
            if reason is not None:
                raise Interrupted(number, step + 1, reason)
        elapsed = time.perf_counter() - start
        state.progress = None
        totals = sum_all(torch.stack([loss_sum.float(), correct.float(),
                                      torch.tensor(float(seen), device=loss_sum.device)]))
        loss_total, correct_total, seen_total = totals.tolist()  # over every rank
        rate = (seen - seen_before) * self.batches.ranks / max(elapsed, 1e-9)
        return loss_total / max(seen_total, 1), correct_total / max(seen_total, 1), rate

    def _check_finite(self, loss_sum: float, epoch: int, step: int, every: int) -> None:
        """Stop at the first progress check whose running loss is NaN or infinite (checked
        where the loss is read anyway, so no extra device synchronisation)."""
        if math.isfinite(loss_sum):
            return
        lr = self.state.scheduler.get_last_lr()[0]
        where = f"at step {step}" if every == 1 else \
            f"between steps {max(1, step - every + 1)} and {step}"
        raise TrainingError(
            f"The training loss became {loss_sum} in epoch {epoch} {where}, at learning rate "
            f"{lr:.3g}: the weights "
            f"diverged and nothing was saved. Try a smaller lr (e.g. lr={lr / 10:.3g}), "
            "a smaller batch, or check the data for broken values.")

    def run(self, val: Split | None, score: Scorer, callbacks: Sequence[Callback] = ()
            ) -> TrainState:
        """Train the epochs not yet done; the state then holds the best epoch's weights in
        ``best_weights`` (the network keeps the last step's). After each epoch the
        callbacks may change the number of epochs (`Callback.epochs_after`) or stop the run
        (`Callback.stop_after_epoch`)."""
        state = self.state
        number = state.epoch
        if number < self.epochs:
            compiler_import.before_steps()  # not inside the first epoch's time
        while number < self.epochs:
            number += 1
            for callback in callbacks:
                callback.on_epoch_start(number)
            started = time.perf_counter()
            loss, accuracy, rate = self.epoch(number, callbacks)
            scores = None if val is None else score(state.evaluated, val)
            stats = EpochStats(number, loss, accuracy, scores and scores.loss,
                               scores and scores.accuracy, state.scheduler.get_last_lr()[0],
                               time.perf_counter() - started, rate, self.batches.timer.total(),
                               scores and scores.balanced_accuracy)
            state.end_epoch(stats)
            log.info("epoch %d: loss %.4f, acc %.4f, val acc %s", number, loss, accuracy,
                     stats.val_acc)
            self.epochs = refit_epochs(self.epochs, stats, callbacks)
            for callback in callbacks:
                callback.on_epoch_end(stats)
            if any([callback.stop_after_epoch(stats, self.epochs) for callback in callbacks]):
                break
        return state


def refit_epochs(epochs: int, stats: EpochStats, callbacks: Sequence[Callback]) -> int:
    """The number of epochs as the callbacks want it after epoch ``stats.epoch`` (a time
    budget), every callback told of each change."""
    for callback in callbacks:
        wanted = callback.epochs_after(stats, epochs)
        if wanted != epochs:
            epochs = wanted
            for listener in callbacks:
                listener.on_epochs(wanted)
    return epochs


def _first(reasons) -> str | None:
    """The first reason given (not None), asking no further."""
    return next((reason for reason in reasons if reason is not None), None)
