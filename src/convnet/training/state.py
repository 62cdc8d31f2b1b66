"""Everything a training run would need to go on exactly where it stopped, in one object.

`TrainState` holds the weights, the optimizer, the schedule, the moving average, the epoch
and step counters, the best epoch so far and its weights, the history, and every random
generator in use. `state_dict()` gives all of it as tensors and plain values;
`load_state_dict()` puts it back. What is *not* here is the resident data
(`convnet.training.batches`): that is rebuilt from the dataset, not saved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from convnet.errors import RunError
from convnet.network import Network
from convnet.training.callbacks import EpochStats
from convnet.training.distributed import gather, world

# the moving average spans at most about this share of the steps taken (and one step more):
# a run of one epoch, averaged over an epoch's steps, kept the first steps' weights in its
# average and scored 16.67% on six shapes, where its last step's weights scored 99.33%
YOUNG_SHARE = 0.25


def ema_decay(decay: float, step: int) -> float:
    """The moving average's decay at ``step`` (steps taken before this one): ``decay``, or
    less while the run is young, so that the average spans at most ``1 + YOUNG_SHARE *
    step`` steps (its span is ``1 / (1 - decay)``)."""
    return min(decay, 1 - 1 / (1 + YOUNG_SHARE * step))


class MovingAverage(AveragedModel):
    """A per-step exponential moving average of the weights and batch-norm statistics,
    which evaluation and the saved run use instead of the last step's weights. Its decay
    is `ema_decay` at each step: the step count comes from the run's state, so a resumed
    run averages exactly as an uninterrupted one."""

    def __init__(self, network: nn.Module, decay: float):
        super().__init__(network, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
        self.decay = decay

    def step(self, network: nn.Module, step: int) -> None:
        """Average ``network`` in, at the decay for ``step``."""
        self.multi_avg_fn = get_ema_multi_avg_fn(ema_decay(self.decay, step))
        self.update_parameters(network)


def make_ema(network: nn.Module, decay: float) -> MovingAverage | None:
    """The run's `MovingAverage` of ``network``; None when off (``decay`` 0)."""
    if decay <= 0:
        return None
    return MovingAverage(network, decay)


def _clone(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in state.items()}


@dataclass
class Progress:
    """Where an epoch stands mid-way: what a checkpoint inside an epoch must hold to go on
    at its next step with the same batches and the same running sums."""

    epoch: int  # 1-based
    order: torch.Tensor  # (N,) the epoch's batch order
    done: int  # steps done
    loss_sum: torch.Tensor  # () the summed loss of the images seen, on the device
    correct: torch.Tensor  # () correct guesses so far, on the device
    seen: int  # images seen

    def to_dict(self) -> dict[str, Any]:
        """Plain values and detached copies of the tensors (a checkpoint's part)."""
        return {"epoch": self.epoch, "order": self.order.detach().clone(), "done": self.done,
                "loss_sum": self.loss_sum.detach().clone(),
                "correct": self.correct.detach().clone(), "seen": self.seen}

    @classmethod
    def from_dict(cls, saved: dict[str, Any] | None) -> Progress | None:
        return None if saved is None else cls(**saved)


@dataclass
class TrainState:
    network: Network
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    ema: MovingAverage | None
    generator: torch.Generator  # batch order and augmentation, on the training device
    epoch: int = 0  # epochs finished
    step: int = 0  # optimizer steps taken
    history: list[EpochStats] = field(default_factory=list)
    best: EpochStats | None = None
    best_weights: dict[str, torch.Tensor] | None = None  # the evaluated weights of `best`
    progress: Progress | None = None  # mid-epoch, where the epoch stands; None between epochs
    # Under torchrun: the generator of the one global batch order (the same on every rank);
    # `generator` then draws only this rank's augmentation. None: `generator` does both.
    order_generator: torch.Generator | None = None
    # Epochs are ranked by validation accuracy, or, in a run that weighs its classes (the
    # loss's weights or an even sampler), by balanced accuracy: a 10-to-1 folder's plain
    # accuracy prefers the epochs that answer the large class, which the weights undo.
    balanced: bool = False

    @property
    def evaluated(self) -> nn.Module:
        """The weights that are scored and saved: the moving average when there is one."""
        return self.network if self.ema is None else self.ema.module

    def keep_start(self, stats: EpochStats) -> None:
        """Record the weights as training starts as "epoch 0", the one to beat: a fine-tune's
        new head fitted on the frozen body. An epoch is kept only if it scores at least as
        well on the validation images, and patience counts from here."""
        self.best = stats
        self.best_weights = _clone(self.evaluated.state_dict())

    def end_epoch(self, stats: EpochStats) -> bool:
        """Record a finished epoch; keep its weights if it is the best so far (highest
        validation `score`, the later epoch on a tie; without validation, the last).

        Returns:
            whether this epoch became the best.
        """
        self.epoch = stats.epoch
        self.history.append(stats)
        score = self.score(stats)
        better = self.best is None or score is None or \
            score >= (self.score(self.best) or 0.0)
        if better:
            self.best = stats
            self.best_weights = _clone(self.evaluated.state_dict())
        return better

    def score(self, stats: EpochStats) -> float | None:
        """What ranks ``stats`` among the epochs (`balanced`); None without validation."""
        if self.balanced and stats.val_balanced is not None:
            return stats.val_balanced
        return stats.val_acc

    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain values only (nested dicts and lists): no Python objects."""
        generators = {"batches": self.generator.get_state(), "torch": torch.get_rng_state()}
        if self.order_generator is not None:  # under torchrun: every rank's augmentation
            generators["order"] = self.order_generator.get_state()
            generators["ranks"] = gather(self.generator.get_state())
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            generators["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "network": _clone(self.network.state_dict()),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "ema": None if self.ema is None else _clone(self.ema.state_dict()),
            "generators": generators,
            "epoch": self.epoch,
            "step": self.step,
            "history": [stats.row() for stats in self.history],
            "best": None if self.best is None else self.best.row(),
            "best_weights": self.best_weights,
            "progress": None if self.progress is None else self.progress.to_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Put a `state_dict()` back; the objects must be built from the same config.

        Raises:
            RunError: when the saved weights do not fit the network (another architecture
                or class count), listing what differs.
        """
        differences = self.network.differences(state["network"])
        if differences:
            more = f" and {len(differences) - 5} more" if len(differences) > 5 else ""
            raise RunError(f"The checkpoint does not fit the network built from its settings "
                           f"(another architecture or class count): "
                           f"{'; '.join(differences[:5])}{more}. Resume it with the settings "
                           "that wrote it, or train anew.")
        self.network.load_state_dict(state["network"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        generators = state["generators"]
        self.generator.set_state(generators["batches"])
        if self.order_generator is not None and "order" in generators:
            self.order_generator.set_state(generators["order"])
            self.generator.set_state(generators["ranks"][world().rank])
        torch.set_rng_state(generators["torch"])
        if "cuda" in generators:
            torch.cuda.set_rng_state_all(generators["cuda"])
        self.epoch, self.step = state["epoch"], state["step"]
        self.history = [EpochStats(**row) for row in state["history"]]
        self.best = None if state["best"] is None else EpochStats(**state["best"])
        self.best_weights = state["best_weights"]
        self.progress = Progress.from_dict(state.get("progress"))
