"""The optimizer and the learning-rate schedule a config asks for."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from convnet.training.config import TrainConfig
from convnet.training.speed import fused_options

BODY_LR = 0.2  # fine-tuning: the body learns at this fraction of the head's rate


def _groups(network: nn.Module, config: TrainConfig) -> list[dict]:
    """One group at the peak rate; when fine-tuning, the body's weights in a second group at
    ``body_lr`` of it, so that the trained features move less than the new head."""
    if not config.fine_tunes:
        return [{"params": list(network.parameters()), "lr": config.peak_lr}]
    head = {id(p) for p in network.head_parameters}
    body = [p for p in network.parameters() if id(p) not in head]
    fraction = BODY_LR if config.body_lr is None else config.body_lr
    return [{"params": body, "lr": config.peak_lr * fraction},
            {"params": [p for p in network.parameters() if id(p) in head],
             "lr": config.peak_lr}]


def make_optimizer(network: nn.Module, config: TrainConfig,
                   device: torch.device) -> torch.optim.Optimizer:
    groups, decay, fused = _groups(network, config), config.weight_decay, fused_options(device)
    lr = config.peak_lr
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=config.momentum,
                               nesterov=config.momentum > 0, weight_decay=decay, **fused)
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=lr, weight_decay=decay, **fused)
    return torch.optim.AdamW(groups, lr=lr, weight_decay=decay, **fused)


def make_schedule(optimizer: torch.optim.Optimizer, config: TrainConfig,
                  total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """One scheduler step per optimizer step, ``total_steps`` in all."""
    if config.schedule == "onecycle" and total_steps >= 4:
        # torch needs two warm-up steps at least; tiny runs warm up for longer than 20%
        # each group's own peak: a schedule made again mid-run finds it under max_lr
        peaks = [group.get("max_lr", group["lr"]) for group in optimizer.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=peaks, total_steps=total_steps,
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
