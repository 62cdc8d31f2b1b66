"""The training loop: data on the device as uint8, batches by permutation, no DataLoader.

`train` reads top to bottom: load data, split, build, fit epoch by epoch keeping the best
validation weights, score on the test split, write the run folder.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F

from convnet import datasets
from convnet.augment import batch_shift, light_shift
from convnet.callbacks import Callback, EpochStats, TrainStart
from convnet.config import TrainConfig
from convnet.datasets import Dataset, Split
from convnet.errors import ConvnetError
from convnet.evaluate import Evaluation, evaluate_split, normalize
from convnet.model import Network, build
from convnet.presets import PRESETS
from convnet.run import (
    METRICS,
    RUN_FORMAT,
    Run,
    library_versions,
    save_weights,
    write_meta,
)
from convnet.rundir import StagedDir, choose_run_dir, write_atomic

log = logging.getLogger("convnet")


@dataclass
class TrainResult:
    run: Run
    path: Path
    history: list[EpochStats]
    best_epoch: int
    test: Evaluation | None
    seconds: float


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConvnetError("--device cuda was asked for but no CUDA GPU is available to "
                           "torch. Use --device cpu or --device auto.")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def channel_stats(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of uint8 images (N, C, H, W), on the 0..1 scale."""
    scaled = images.double() / 255
    mean = scaled.mean(dim=(0, 2, 3))  # (C,)
    std = scaled.std(dim=(0, 2, 3)).clamp(min=1e-3)  # (C,); a blank channel must not blow up
    return mean.float(), std.float()


def _optimizer(network: Network, config: TrainConfig) -> torch.optim.Optimizer:
    lr, decay = config.peak_lr, config.weight_decay
    if config.optimizer == "sgd":
        return torch.optim.SGD(network.parameters(), lr=lr, momentum=config.momentum,
                               nesterov=config.momentum > 0, weight_decay=decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(network.parameters(), lr=lr, weight_decay=decay)
    return torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=decay)


def _schedule(optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int):
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=config.peak_lr, total_steps=total_steps, pct_start=0.2,
            cycle_momentum=config.optimizer == "sgd")
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)


class _Fitter:
    """State shared by the epochs of one training run."""

    def __init__(self, network: Network, train_split: Split, config: TrainConfig,
                 device: torch.device, mean: torch.Tensor, std: torch.Tensor):
        self.network, self.config, self.device = network, config, device
        self.images = train_split.images.to(device)  # (N, C, H, W) uint8, resident
        self.labels = train_split.labels.to(device)  # (N,)
        self.mean, self.std = mean.to(device), std.to(device)
        self.batch_size = min(config.batch_size, len(train_split))
        self.steps = len(train_split) // self.batch_size  # drop the ragged last batch
        self.shift = light_shift(min(network.input_shape[:2])) if config.augment == "light" \
            else 0
        self.memory_format = torch.channels_last if config.channels_last \
            else torch.contiguous_format
        self.generator = torch.Generator(device=device).manual_seed(config.seed)
        self.optimizer = _optimizer(network, config)
        self.scheduler = _schedule(self.optimizer, config, self.steps * config.epochs)

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        images = batch_shift(self.images[index], self.shift, self.generator)  # (B, C, H, W)
        x = normalize(images, self.mean, self.std).contiguous(memory_format=self.memory_format)
        return x, self.labels[index]

    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.network(x)  # (B, classes)
        loss = F.cross_entropy(logits, y, label_smoothing=self.config.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        return loss.detach(), (logits.argmax(1) == y).sum()

    def score(self, split: Split, classes: list[str]) -> Evaluation:
        return evaluate_split(self.network, split, self.mean, self.std, classes,
                              self.config.eval_batch_size, self.memory_format)

    def epoch(self, number: int, callbacks: Sequence[Callback]) -> tuple[float, float, float]:
        """One pass over the training split; returns (mean loss, accuracy, images/s)."""
        self.network.train()
        order = torch.randperm(len(self.labels), device=self.device, generator=self.generator)
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        start, seen = time.perf_counter(), 0
        report_every = max(1, self.steps // 50)  # ~50 progress updates per epoch
        for step in range(self.steps):
            x, y = self.batch(order[step * self.batch_size : (step + 1) * self.batch_size])
            loss, hits = self.step(x, y)
            loss_sum += loss * len(y)
            correct += hits
            seen += len(y)
            if (step + 1) % report_every == 0 or step + 1 == self.steps:
                rate = seen / max(time.perf_counter() - start, 1e-9)
                for callback in callbacks:
                    callback.on_step(number, step + 1, float(loss_sum) / seen,
                                     int(correct) / seen, rate)
        elapsed = time.perf_counter() - start
        return float(loss_sum) / seen, int(correct) / seen, seen / max(elapsed, 1e-9)


def _csv(history: list[EpochStats]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(history[0].row()))
    writer.writeheader()
    writer.writerows(stats.row() for stats in history)
    return buffer.getvalue().encode()


def _meta(network: Network, dataset: Dataset, config: TrainConfig, mean: torch.Tensor,
          std: torch.Tensor, sizes: dict[str, int], best: EpochStats, test: Evaluation | None,
          weights_sha: str) -> dict:
    return {
        "format": RUN_FORMAT,
        "convnet_version": library_versions()["convnet"],
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "spec": network.spec,
        "arch": config.arch,
        "classes": dataset.classes,
        "input_shape": list(network.input_shape),
        "normalization": {"mean": mean.tolist(), "std": std.tolist(), "scale": 255},
        "config": config.to_dict(),
        "versions": library_versions(),
        "data": {"name": dataset.name, "source": dataset.source,
                 "fingerprint": dataset.fingerprint(), **sizes},
        "params": network.num_params,
        "metrics": {"best_epoch": best.epoch, "val_acc": best.val_acc, "val_loss": best.val_loss,
                    "test": None if test is None else {
                        "accuracy": test.accuracy, "loss": test.loss, "macro": test.macro}},
        "weights": {"file": "model.safetensors", "sha256": weights_sha},
    }


def _epochs(fitter: _Fitter, val_split: Split | None, classes: list[str], staging: Path,
            callbacks: Sequence[Callback]) -> tuple[list[EpochStats], EpochStats]:
    """Train every epoch, writing metrics.csv as it goes; restores the best epoch's weights.

    The best epoch has the highest validation accuracy (the later one on a tie); without a
    validation split it is the last epoch.
    """
    history: list[EpochStats] = []
    best, best_state = None, None
    for epoch in range(1, fitter.config.epochs + 1):
        for callback in callbacks:
            callback.on_epoch_start(epoch)
        epoch_start = time.perf_counter()
        loss, accuracy, rate = fitter.epoch(epoch, callbacks)
        val = None if val_split is None else fitter.score(val_split, classes)
        stats = EpochStats(epoch, loss, accuracy, val and val.loss, val and val.accuracy,
                           fitter.scheduler.get_last_lr()[0],
                           time.perf_counter() - epoch_start, rate)
        history.append(stats)
        write_atomic(staging / METRICS, _csv(history))
        if best is None or val is None or stats.val_acc >= best.val_acc:
            best = stats
            best_state = {k: v.detach().clone() for k, v in fitter.network.state_dict().items()}
        log.info("epoch %d: loss %.4f, acc %.4f, val acc %s", epoch, loss, accuracy,
                 stats.val_acc)
        for callback in callbacks:
            callback.on_epoch_end(stats)
    fitter.network.load_state_dict(best_state)
    return history, best


def fit(dataset: Dataset, config: TrainConfig, out: str | Path | None = None,
        callbacks: Sequence[Callback] = ()) -> TrainResult:
    """Train on an already loaded dataset; see `train`."""
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    train_split, val_split = dataset.train.split_stratified(config.val_split, config.seed)
    network = build(config.arch, dataset.input_shape, len(dataset.classes)).to(device)
    network = network.to(memory_format=torch.channels_last) if config.channels_last else network
    arch_name = config.arch if config.arch in PRESETS else "custom"
    folder = choose_run_dir(out, f"{dataset.name}-{arch_name}")
    mean, std = channel_stats(train_split.images)
    fitter = _Fitter(network, train_split, config, device, mean, std)
    sizes = {"train": len(train_split), "val": len(val_split or []),
             "test": len(dataset.test or [])}
    for callback in callbacks:
        callback.on_train_start(TrainStart(config.epochs, fitter.steps, sizes["train"],
                                           sizes["val"], sizes["test"], str(device),
                                           network.spec, network.num_params, str(folder)))
    started = time.perf_counter()
    with StagedDir(folder) as staging:
        history, best = _epochs(fitter, val_split, dataset.classes, staging, callbacks)
        test = None if dataset.test is None else fitter.score(dataset.test, dataset.classes)
        network = network.to(memory_format=torch.contiguous_format)
        sha = save_weights(staging, network)
        meta = _meta(network, dataset, config, mean, std, sizes, best, test, sha)
        write_meta(staging, meta)
    result = TrainResult(Run(network.cpu(), meta, folder), folder, history, best.epoch, test,
                         time.perf_counter() - started)
    for callback in callbacks:
        callback.on_train_end(result)
    return result


def train(config: TrainConfig | None = None, *, out: str | Path | None = None,
          callbacks: Sequence[Callback] = (), **options) -> TrainResult:
    """Train a CNN and write its run folder.

    Args:
        config: a full `TrainConfig`; or give its fields as keyword ``options``.
        out: run folder to create (must not hold files); default ``runs/<data>-<arch>-<time>``.
        callbacks: progress bars, loggers (see `convnet.callbacks.Callback`).

    Raises:
        ConvnetError: for bad options, data or spec, before anything is written.

    >>> result = convnet.train(data="shapes", epochs=2)  # doctest: +SKIP
    >>> result.test.accuracy  # doctest: +SKIP
    """
    if config is None:
        config = TrainConfig.from_dict(options)
    elif options:
        config = TrainConfig.from_dict({**config.to_dict(), **options})
    dataset = datasets.load(config.data)
    return fit(dataset, config, out, callbacks)
