"""The learning-rate range test (Smith 2017; fastai's and Lightning's lr finder): train
from the initial weights while the learning rate grows exponentially, step by step, and
watch the loss. Where it falls steadily is a good peak learning rate (`suggest`).

The sweep runs on copies: the network's weights and the optimizer's state are put back
as they were, so a run that follows starts from the same initial state.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch

from convnet.training.setup import Prepared

START, END, STEPS = 1e-6, 1.0, 100
SMOOTHING = 0.98  # of the loss's running average (bias-corrected), as fastai smooths it
DIVERGED = 4.0  # the sweep stops once the smoothed loss passes this many times its best


@dataclass(frozen=True)
class Sweep:
    """Learning rates tried, the smoothed loss at each, and the suggestion."""

    lrs: list[float]
    losses: list[float]
    suggestion: float

    def to_dict(self) -> dict:
        return {"suggestion": self.suggestion, "lrs": self.lrs, "losses": self.losses}


def sweep(run: Prepared, start: float = START, end: float = END, steps: int = STEPS) -> Sweep:
    """Train ``run`` for up to ``steps`` steps with the learning rate going from ``start``
    to ``end`` exponentially; returns the sweep. The run's state is left as it was."""
    state, batches, loop = run.state, run.batches, run.loop
    saved = copy.deepcopy(state.network.state_dict())
    saved_optimizer = copy.deepcopy(state.optimizer.state_dict())
    groups = state.optimizer.param_groups
    scale = [group.get("max_lr", group["lr"]) for group in groups]
    top = max(scale) or 1.0
    generator = torch.Generator(device=batches.device).manual_seed(0)
    lrs, losses, average, best = [], [], 0.0, math.inf
    state.network.train()
    order, at = batches.order(generator), 0
    for number in range(steps):
        lr = start * (end / start) ** (number / max(steps - 1, 1))
        for group, peak in zip(groups, scale):
            group["lr"] = lr * peak / top  # groups keep their ratios (a slower body)
        if at == batches.steps:
            order, at = batches.order(generator), 0
        x, y = batches.batch(order, at, generator)
        at += 1
        loss, _ = loop.learn(x, y)  # the training step's own forward, loss and update
        value = float(loss)
        if not math.isfinite(value):
            break
        average = SMOOTHING * average + (1 - SMOOTHING) * value
        smoothed = average / (1 - SMOOTHING ** (number + 1))
        lrs.append(lr)
        losses.append(smoothed)
        best = min(best, smoothed)
        if smoothed > DIVERGED * best:
            break
    state.network.load_state_dict(saved)
    state.optimizer.load_state_dict(saved_optimizer)
    return Sweep(lrs, losses, suggest(lrs, losses))


def suggest(lrs: list[float], losses: list[float]) -> float:
    """The learning rate two thirds of the way along the sweep's longest valley: the
    longest run of points over which the smoothed loss keeps falling (a longest decreasing
    subsequence, so a noisy step does not end it). That is fastai's "valley" rule; it lands
    where the loss falls steadily, before the minimum where training turns unstable."""
    count = len(losses)
    if count < 3:
        return lrs[0] if lrs else START
    length, before = [1] * count, list(range(count))
    for i in range(1, count):  # O(n^2) over at most a few hundred steps
        for j in range(i):
            if losses[j] > losses[i] and length[j] + 1 > length[i]:
                length[i], before[i] = length[j] + 1, j
    end = max(range(count), key=length.__getitem__)
    start = end
    while before[start] != start:
        start = before[start]
    return lrs[start + (end - start) * 2 // 3]
