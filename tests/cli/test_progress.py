"""The plain progress lines (a log file, CI) count epochs to the run's current total, which
the time budget may change while it trains."""

from __future__ import annotations

import io

from rich.console import Console

from convnet.cli.progress import RichProgress
from convnet.training.callbacks import EpochStats, TrainStart


def _stats(epoch: int) -> EpochStats:
    return EpochStats(epoch, 0.5, 0.9, 0.4, 0.95, 1e-3, 1.0, 1000.0)


def test_epoch_lines_follow_a_budget_change_of_the_total():
    out = io.StringIO()
    progress = RichProgress(Console(file=out, force_terminal=False, width=200))
    progress.on_train_start(TrainStart(10, 5, 100, 10, 20, "cpu", "fc", 11, "/tmp/run"))
    progress.on_epoch_end(_stats(1))
    progress.on_epochs(4)
    progress.on_epoch_end(_stats(2))
    lines = [line for line in out.getvalue().splitlines() if line.startswith("epoch")]
    assert lines[0].startswith("epoch 1/10:") and lines[1].startswith("epoch 2/4:")
