"""The training data resident on the device, and the batches drawn from it.

The whole training split sits on the device as uint8 (N, C, H, W), channels-last when the
network is; each epoch is one permutation, each batch one index and one batched augmentation
(no DataLoader workers, no per-image Python). The random generator is not held here: it is
part of the training state (`convnet.training.state`), so a checkpoint captures it.
"""

from __future__ import annotations

import time

import torch

from convnet.data import balance
from convnet.data.augment import Augment, augment_batch
from convnet.data.dataset import Split
from convnet.data.pixels import Normalization


class DataTimer:
    """Time spent assembling batches, without stalling the device.

    On a CPU the work is done when the call returns, so a wall clock measures it. On a GPU
    the calls only queue work: a pair of CUDA events per batch is recorded instead, and they
    are read once, at the end of the epoch (one synchronisation per epoch, not per batch).
    """

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.reset()

    def reset(self) -> None:
        self.seconds = 0.0
        self.events: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []
        self._started: float | torch.cuda.Event | None = None

    def start(self) -> None:
        if self.cuda:
            self._started = torch.cuda.Event(enable_timing=True)
            self._started.record()
        else:
            self._started = time.perf_counter()

    def stop(self) -> None:
        if self.cuda:
            ended = torch.cuda.Event(enable_timing=True)
            ended.record()
            self.events.append((self._started, ended))
        else:
            self.seconds += time.perf_counter() - self._started

    def total(self) -> float:
        """Seconds so far this epoch (on a GPU: waits for the recorded batches once)."""
        if self.cuda and self.events:
            self.events[-1][1].synchronize()
            self.seconds += sum(start.elapsed_time(end) for start, end in self.events) / 1000
            self.events = []
        return self.seconds


class Batches:
    """The training split on ``device``, cut into augmented, normalised batches."""

    def __init__(self, split: Split, normalization: Normalization, ops: Augment,
                 batch_size: int, balancing: str, num_classes: int, device: torch.device,
                 memory_format: torch.memory_format = torch.channels_last,
                 rank: int = 0, ranks: int = 1):
        self.device, self.ops, self.memory_format = device, ops, memory_format
        # Under torchrun each rank holds the whole split (small next to a device's memory,
        # and no shard bookkeeping) and takes its batch of each global step: step s is
        # order[s*R*B : (s+1)*R*B] and rank r takes the r-th B of it, so every rank runs
        # the same number of steps and R ranks see what one process with batch R*B sees.
        self.rank, self.ranks = rank, ranks
        # (N, C, H, W) uint8, resident; channels-last once here, not once per batch
        self.images = split.images.to(device).contiguous(memory_format=memory_format)
        self.labels = split.labels.to(device)  # (N,)
        self.normalization = normalization.to(device)
        self.batch_size = min(batch_size, max(1, len(split) // ranks))
        self.steps = len(split) // (self.batch_size * ranks)  # drop the ragged last step
        self.balancing = balancing
        counts = balance.class_counts(split.labels, num_classes)
        self.loss_weights = balance.loss_weights(counts).to(device) \
            if balancing == "weights" else None
        self.timer = DataTimer(device)

    def __len__(self) -> int:
        return len(self.labels)

    def order(self, generator: torch.Generator) -> torch.Tensor:
        """One epoch's order of training images (N,): a permutation, or an even draw per
        class with ``balance='sampler'``."""
        if self.balancing == "sampler":
            return balance.balanced_order(self.labels, generator)
        return torch.randperm(len(self.labels), device=self.device, generator=generator)

    def batch(self, order: torch.Tensor, step: int, generator: torch.Generator
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch ``step`` of an epoch's ``order``: augmented float32 (B, C, H, W), labels (B,)."""
        self.timer.start()
        start = (step * self.ranks + self.rank) * self.batch_size
        index = order[start : start + self.batch_size]
        if self.memory_format == torch.channels_last:
            # index_select on the (N, H, W, C) view keeps the pixels channels-last
            images = self.images.permute(0, 2, 3, 1).index_select(0, index).permute(0, 3, 1, 2)
        else:
            images = self.images.index_select(0, index)  # (B, C, H, W) uint8
        x = augment_batch(images, self.ops, self.normalization.mean, self.normalization.std,
                          generator, self.memory_format)  # (B, C, H, W) float32
        y = self.labels.index_select(0, index)  # (B,)
        self.timer.stop()
        return x, y
