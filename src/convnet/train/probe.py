"""How fast a network trains here: a few timed steps on random images, before any data.

The planner asks it for each image size it weighs, so that a plan's epochs and its time
estimate come from this machine, not from a table.
"""

from __future__ import annotations

import time
from functools import lru_cache

import torch
import torch.nn.functional as F

from convnet.network import build
from convnet.train.speed import autocast, autocast_dtype, fused_options

WARMUP, MIN_STEPS, MIN_SECONDS = 2, 3, 0.25


@lru_cache(maxsize=64)  # a folder's plan weighs its size before decoding and again after
def seconds_per_image(arch: str, input_shape: tuple[int, int, int], classes: int,
                      batch_size: int, device: torch.device, precision: str = "auto") -> float:
    """Seconds one training step takes per image (forward, backward, AdamW), measured.

    Two warm-up steps, then steps until ``MIN_STEPS`` and ``MIN_SECONDS`` are both passed.
    Torch's global random state is left as it was. Measured once per process for each set
    of arguments.
    """
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        network = build(arch, input_shape, classes).to(device)
        network = network.to(memory_format=torch.channels_last)
        optimizer = torch.optim.AdamW(network.parameters(), lr=1e-3, **fused_options(device))
        height, width, channels = input_shape
        x = torch.rand(batch_size, channels, height, width, device=device)  # (B, C, H, W)
        x = x.to(memory_format=torch.channels_last)
        y = torch.randint(0, classes, (batch_size,), device=device)
        dtype = autocast_dtype(precision, device)
        steps, started = 0, 0.0
        while steps < WARMUP + MIN_STEPS or time.perf_counter() - started < MIN_SECONDS:
            if steps == WARMUP:
                _sync(device)
                started = time.perf_counter()
            with autocast(device, dtype):
                loss = F.cross_entropy(network(x).float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
        _sync(device)
    return (time.perf_counter() - started) / ((steps - WARMUP) * batch_size)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
