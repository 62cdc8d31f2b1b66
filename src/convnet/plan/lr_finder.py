"""`convnet lr-find` and ``lr='find'``: the range test on the run a config would train (its
data, network, batch and augmentation as planned), from that run's initial weights."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from convnet.atomic import write_json
from convnet.plan.resolve import resolve
from convnet.training.config import TrainConfig
from convnet.training.lr_find import Sweep, sweep

FIND = "find"
LR_FIND = "lr_find.json"


def find_lr(config: TrainConfig, started: float | None = None,
            steps: int | None = None) -> Sweep:
    """The sweep for the run ``config`` plans (its lr left to the sweep)."""
    run = resolve(replace(config, lr=None), started=started).prepare()
    return sweep(run) if steps is None else sweep(run, steps=steps)


def when_asked(config: TrainConfig, asked: bool, started: float, notify
               ) -> tuple[TrainConfig, Sweep | None]:
    """``config`` with the lr the range test suggests, when ``asked`` (``lr='find'``)."""
    if not asked:
        return config, None
    found = find_lr(config, started)
    notify(describe(found))
    return replace(config, lr=float(f"{found.suggestion:.3g}")), found


def keep(found: Sweep | None, folder: Path) -> None:
    """The sweep beside the run it chose the lr of (``lr_find.json``)."""
    if found is not None:
        write_json(folder / LR_FIND, found.to_dict())


def describe(found: Sweep) -> str:
    return (f"lr find: suggested lr {found.suggestion:.3g}, two thirds along the loss's "
            f"longest fall in a sweep of {len(found.lrs)} steps from {found.lrs[0]:.0e} to "
            f"{found.lrs[-1]:.2g}")
