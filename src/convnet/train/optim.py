"""The optimizer and the learning-rate schedule a config asks for."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from convnet.train.config import TrainConfig
from convnet.train.speed import fused_options


def make_optimizer(network: nn.Module, config: TrainConfig,
                   device: torch.device) -> torch.optim.Optimizer:
    lr, decay, fused = config.peak_lr, config.weight_decay, fused_options(device)
    if config.optimizer == "sgd":
        return torch.optim.SGD(network.parameters(), lr=lr, momentum=config.momentum,
                               nesterov=config.momentum > 0, weight_decay=decay, **fused)
    if config.optimizer == "adam":
        return torch.optim.Adam(network.parameters(), lr=lr, weight_decay=decay, **fused)
    return torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=decay, **fused)


def make_schedule(optimizer: torch.optim.Optimizer, config: TrainConfig,
                  total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """One scheduler step per optimizer step, ``total_steps`` in all."""
    if config.schedule == "onecycle" and total_steps >= 4:
        # torch needs two warm-up steps at least; tiny runs warm up for longer than 20%
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=config.peak_lr, total_steps=total_steps,
            pct_start=max(0.2, 2 / total_steps), cycle_momentum=config.optimizer == "sgd")
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)


def schedule_from(optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int,
                  step: int) -> torch.optim.lr_scheduler.LRScheduler:
    """The schedule over ``total_steps``, stepped on to ``step``: a run's schedule
    re-planned mid-run (more epochs on resume, fewer or more under a time budget)."""
    with warnings.catch_warnings():  # stepping a schedule without optimizer steps
        warnings.simplefilter("ignore")
        schedule = make_schedule(optimizer, config, total_steps)
        for _ in range(step):
            schedule.step()
    return schedule
