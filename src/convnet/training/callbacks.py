"""Hooks into the training loop, so that progress bars, logging and the decisions to stop
stay out of it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class TrainStart:
    epochs: int
    steps_per_epoch: int
    train_images: int
    val_images: int
    test_images: int
    device: str
    spec: str
    params: int
    out: str
    head_val_acc: float | None = None  # fine-tuning: the new head alone, before epoch 1


@dataclass(frozen=True)
class EpochStats:
    epoch: int  # 1-based
    train_loss: float  # mean training loss over the epoch (with label smoothing)
    train_acc: float  # accuracy on the augmented training batches
    val_loss: float | None
    val_acc: float | None
    lr: float  # learning rate at the end of the epoch
    seconds: float  # wall time of the epoch, validation included
    images_per_s: float  # training images per second, validation excluded
    data_seconds: float = 0.0  # of `seconds`: assembling and augmenting batches
    # the mean recall over the validation images' classes: what ranks the epochs of a run
    # that weighs its classes (`convnet.training.state.TrainState.balanced`)
    val_balanced: float | None = None

    def row(self) -> dict:
        return asdict(self)


class Callback:
    """Override what you need; every method is called on the primary process only."""

    def on_scan(self, done: int, total: int) -> None:
        """Files of a folder dataset decoded so far (only when it is not cached yet)."""

    def on_data_report(self, report: object) -> None:
        """The scan's `convnet.data.scan.Report`, before training starts."""

    def on_plan(self, plan: object) -> None:
        """The `convnet.plan.planner.Plan` the run follows, before it starts."""

    def on_train_start(self, info: TrainStart) -> None: ...

    def on_epochs(self, total: int) -> None:
        """The run's number of epochs changed while it trains (the time budget)."""

    def on_epoch_start(self, epoch: int) -> None: ...

    def on_step(self, epoch: int, step: int, loss: float, accuracy: float,
                images_per_s: float) -> None: ...

    def on_epoch_end(self, stats: EpochStats) -> None: ...

    def on_notice(self, line: str) -> None:
        """Something the user should know while training runs (e.g. the CPU is shared)."""

    def on_train_end(self, result: object) -> None: ...

    def stop_after_step(self) -> str | None:
        """Asked after every step: a reason to stop now (a signal's name), or None. The
        loop then raises `convnet.errors.Interrupted` with the state at a whole step."""
        return None

    def epochs_after(self, stats: EpochStats, epochs: int) -> int:
        """Asked after each epoch, before `on_epoch_end`: how many epochs the run should
        have now (``epochs``: as many as it has). A change is told to every callback
        (`on_epochs`)."""
        return epochs

    def stop_after_epoch(self, stats: EpochStats, epochs: int) -> bool:
        """Asked after each epoch's `on_epoch_end`: whether to stop before ``epochs``."""
        return False


class EarlyStopping(Callback):
    """Stops a run once ``patience`` epochs have passed without a better validation
    accuracy than the best epoch's (``best()``, the training state's, so a resumed run
    counts from where it stood)."""

    def __init__(self, best: Callable[[], EpochStats | None], patience: int | None):
        self.best, self.patience = best, patience
        self.stopped_at: int | None = None  # the epoch patience ran out at

    def stop_after_epoch(self, stats: EpochStats, epochs: int) -> bool:
        best = self.best()
        if self.patience is None or best is None or best.val_acc is None or \
                stats.epoch >= epochs or stats.epoch - best.epoch < self.patience:
            return False
        self.stopped_at = stats.epoch
        return True
