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
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from convnet import balance, datasets
from convnet.augment import Augment, augment_batch, policy
from convnet.callbacks import Callback, EpochStats, TrainStart
from convnet.config import TrainConfig
from convnet.datasets import Dataset, Split
from convnet.errors import ConvnetError, DataError
from convnet.evaluate import Evaluation, evaluate_split, normalize
from convnet.model import Network, build
from convnet.preprocess import Preprocess
from convnet.presets import PRESETS, auto_preset
from convnet.run import (
    DATA_REPORT,
    METRICS,
    RUN_FORMAT,
    Run,
    library_versions,
    save_weights,
    write_meta,
)
from convnet.rundir import StagedDir, choose_run_dir, write_atomic, write_json
from convnet.speed import autocast, autocast_dtype, fused_options, maybe_compile

log = logging.getLogger("convnet")


@dataclass
class TrainResult:
    run: Run
    path: Path
    history: list[EpochStats]
    best_epoch: int
    test: Evaluation | None
    seconds: float  # training, evaluation and saving
    data_seconds: float = 0.0  # loading the data (decode or cache read) before training


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


def _optimizer(network: Network, config: TrainConfig,
               device: torch.device) -> torch.optim.Optimizer:
    lr, decay, fused = config.peak_lr, config.weight_decay, fused_options(device)
    if config.optimizer == "sgd":
        return torch.optim.SGD(network.parameters(), lr=lr, momentum=config.momentum,
                               nesterov=config.momentum > 0, weight_decay=decay, **fused)
    if config.optimizer == "adam":
        return torch.optim.Adam(network.parameters(), lr=lr, weight_decay=decay, **fused)
    return torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=decay, **fused)


def _schedule(optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int):
    if config.schedule == "onecycle" and total_steps >= 4:
        # torch needs two warm-up steps at least; tiny runs warm up for longer than 20%
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=config.peak_lr, total_steps=total_steps,
            pct_start=max(0.2, 2 / total_steps), cycle_momentum=config.optimizer == "sgd")
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)


class _Fitter:
    """State shared by the epochs of one training run."""

    def __init__(self, network: Network, train_split: Split, config: TrainConfig,
                 device: torch.device, mean: torch.Tensor, std: torch.Tensor,
                 ops: Augment, balancing: str):
        self.network, self.config, self.device, self.ops = network, config, device, ops
        self.memory_format = torch.channels_last if config.channels_last \
            else torch.contiguous_format
        # (N, C, H, W) uint8, resident; channels-last once here, not once per batch
        self.images = train_split.images.to(device).contiguous(memory_format=self.memory_format)
        self.labels = train_split.labels.to(device)  # (N,)
        self.mean, self.std = mean.to(device), std.to(device)
        self.batch_size = min(config.batch_size, len(train_split))
        self.steps = len(train_split) // self.batch_size  # drop the ragged last batch
        counts = balance.class_counts(train_split.labels, network.num_classes)
        self.balancing = balancing
        self.loss_weights = balance.loss_weights(counts).to(device) \
            if balancing == "weights" else None
        self.data_seconds = 0.0  # batch assembly and augmentation, this epoch
        self.generator = torch.Generator(device=device).manual_seed(config.seed)
        self.autocast_dtype = autocast_dtype(config.precision, device)
        self.flip_tta = config.tta == "flip" or config.tta == "auto" and ops.flip
        self.forward = maybe_compile(network, config.compile, device)
        self.optimizer = _optimizer(network, config, device)
        # an exponential moving average of the weights (and batch-norm statistics), which
        # evaluation and the saved run use instead of the last step's weights
        self.ema = None if config.ema <= 0 else AveragedModel(
            network, multi_avg_fn=get_ema_multi_avg_fn(config.ema), use_buffers=True)
        self.scheduler = _schedule(self.optimizer, config, self.steps * config.epochs)

    def speed(self) -> dict[str, object]:
        """How the steps ran, as recorded in model.json."""
        dtype = self.autocast_dtype
        return {"precision": "fp32" if dtype is None else str(dtype).removeprefix("torch."),
                "compile": self.forward is not self.network,
                "channels_last": self.memory_format == torch.channels_last,
                "fused_optimizer": bool(fused_options(self.device))}

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        started = time.perf_counter()
        if self.memory_format == torch.channels_last:
            # index_select on the (N, H, W, C) view keeps the pixels channels-last
            images = self.images.permute(0, 2, 3, 1).index_select(0, index).permute(0, 3, 1, 2)
        else:
            images = self.images.index_select(0, index)  # (B, C, H, W) uint8
        x = augment_batch(images, self.ops, self.mean, self.std, self.generator,
                          self.memory_format)  # (B, C, H, W) float32
        y = self.labels.index_select(0, index)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # so the timing below is the data's own
        self.data_seconds += time.perf_counter() - started
        return x, y

    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with autocast(self.device, self.autocast_dtype):
            logits = self.forward(x)  # (B, classes)
        loss = F.cross_entropy(logits.float(), y, weight=self.loss_weights,
                               label_smoothing=self.config.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update_parameters(self.network)
        return loss.detach(), (logits.argmax(1) == y).sum()

    @property
    def evaluated(self) -> Network:
        """The weights that are scored and saved: the moving average when there is one."""
        return self.network if self.ema is None else self.ema.module

    def score(self, split: Split, classes: list[str]) -> Evaluation:
        return evaluate_split(self.evaluated, split, self.mean, self.std, classes,
                              self.config.eval_batch_size, self.memory_format, self.flip_tta)

    def epoch(self, number: int, callbacks: Sequence[Callback]) -> tuple[float, float, float]:
        """One pass over the training split; returns (mean loss, accuracy, images/s)."""
        self.network.train()
        if self.balancing == "sampler":
            order = balance.balanced_order(self.labels, self.generator)
        else:
            order = torch.randperm(len(self.labels), device=self.device,
                                   generator=self.generator)
        self.data_seconds = 0.0
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


def _meta(network: Network, arch: str, dataset: Dataset, config: TrainConfig, fitter: _Fitter,
          prep: Preprocess, sizes: dict[str, int], best: EpochStats, test: Evaluation | None,
          weights_sha: str) -> dict:
    report = dataset.report
    return {
        "format": RUN_FORMAT,
        "convnet_version": library_versions()["convnet"],
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "spec": network.spec,
        "arch": arch,  # as resolved: `auto` is recorded as the preset it picked
        "classes": dataset.classes,
        "input_shape": list(network.input_shape),
        "preprocess": prep.to_dict(),
        "normalization": {"mean": fitter.mean.tolist(), "std": fitter.std.tolist(),
                          "scale": 255},
        "config": config.to_dict(),
        "augment": fitter.ops.to_dict(),
        "balance": fitter.balancing,
        "tta": "flip" if fitter.flip_tta else "none",
        "speed": fitter.speed(),
        "versions": library_versions(),
        "data": {"name": dataset.name, "source": dataset.source,
                 "fingerprint": dataset.fingerprint(), **sizes,
                 "skipped": [] if report is None else
                 [{"path": p.path, "reason": p.reason} for p in report.problems]},
        "params": network.num_params,
        "metrics": {"best_epoch": best.epoch, "val_acc": best.val_acc, "val_loss": best.val_loss,
                    "test": None if test is None else {
                        "accuracy": test.accuracy, "loss": test.loss, "macro": test.macro,
                        "balanced_accuracy": test.balanced_accuracy}},
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
                           time.perf_counter() - epoch_start, rate, fitter.data_seconds)
        history.append(stats)
        write_atomic(staging / METRICS, _csv(history))
        if best is None or val is None or stats.val_acc >= best.val_acc:
            best = stats
            best_state = {k: v.detach().clone() for k, v in fitter.evaluated.state_dict().items()}
        log.info("epoch %d: loss %.4f, acc %.4f, val acc %s", epoch, loss, accuracy,
                 stats.val_acc)
        for callback in callbacks:
            callback.on_epoch_end(stats)
    fitter.network.load_state_dict(best_state)
    fitter.ema = None  # the network now holds the kept weights, averaged or not
    return history, best


def _augment(config: TrainConfig, dataset: Dataset) -> Augment:
    """The policy's ops for this data, with any op the user set by hand."""
    ops = policy(config.augment, dataset.input_shape, dataset.flip_ok)
    overrides = {name: getattr(config, name)
                 for name in ("flip", "shift", "crop_scale", "rotate", "jitter", "cutout")
                 if getattr(config, name) is not None}
    return replace(ops, **overrides)


def _check_report(dataset: Dataset, config: TrainConfig,
                  callbacks: Sequence[Callback]) -> None:
    report = dataset.report
    if report is None:
        return
    for callback in callbacks:
        callback.on_data_report(report)
    blocking = report.blocking()
    if config.strict and blocking:
        raise DataError(f"--strict: the data scan found {len(blocking)} problem(s) (listed "
                        f"above); training did not start. Fix or remove those files, or drop "
                        "--strict to skip them.", report)


def fit(dataset: Dataset, config: TrainConfig, out: str | Path | None = None,
        callbacks: Sequence[Callback] = ()) -> TrainResult:
    """Train on an already loaded dataset; see `train`."""
    _check_report(dataset, config, callbacks)
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    train_split, val_split = (dataset.train, dataset.val) if dataset.val is not None else \
        dataset.train.split_stratified(config.val_split, config.seed)
    arch = auto_preset(dataset.input_shape) if config.arch == "auto" else config.arch
    network = build(arch, dataset.input_shape, len(dataset.classes)).to(device)
    network = network.to(memory_format=torch.channels_last) if config.channels_last else network
    arch_name = arch if arch in PRESETS else "custom"
    folder = choose_run_dir(out, f"{dataset.name}-{arch_name}")
    mean, std = channel_stats(train_split.images)
    if network.has_whitening:  # its filters come from the training images' patches
        network.fit_whitening(normalize(train_split.images[:10_000].to(device), mean, std))
    balancing = balance.choose(config.balance, balance.class_counts(
        train_split.labels, len(dataset.classes)))
    fitter = _Fitter(network, train_split, config, device, mean, std,
                     _augment(config, dataset), balancing)
    height, width, channels = dataset.input_shape
    prep = dataset.preprocess or Preprocess(height, width, channels, config.resize)
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
        meta = _meta(network, arch, dataset, config, fitter, prep, sizes, best, test, sha)
        write_meta(staging, meta)
        if dataset.report is not None:
            write_json(staging / DATA_REPORT, dataset.report.to_dict())
    result = TrainResult(Run(network.cpu(), meta, folder), folder, history, best.epoch, test,
                         time.perf_counter() - started)
    for callback in callbacks:
        callback.on_train_end(result)
    return result


def _scan_progress(callbacks: Sequence[Callback]):
    def report(done: int, total: int) -> None:
        for callback in callbacks:
            callback.on_scan(done, total)
    return report


def train(config: TrainConfig | None = None, *, out: str | Path | None = None,
          callbacks: Sequence[Callback] = (), **options) -> TrainResult:
    """Train a CNN and write its run folder.

    Args:
        config: a full `TrainConfig`; or give its fields as keyword ``options``.
        out: run folder to create (must not hold files); default ``runs/<data>-<arch>-<time>``.
        callbacks: progress bars, loggers (see `convnet.callbacks.Callback`).

    Raises:
        ConvnetError: for bad options, data or spec, before anything is written.
        DataError: with ``strict=True``, when the data scan finds bad files.

    >>> result = convnet.train(data="shapes", epochs=2)  # doctest: +SKIP
    >>> result.test.accuracy  # doctest: +SKIP
    """
    if config is None:
        config = TrainConfig.from_dict(options)
    elif options:
        config = TrainConfig.from_dict({**config.to_dict(), **options})
    started = time.perf_counter()
    dataset = datasets.load(config.data, image_size=config.image_size, resize=config.resize,
                            progress=_scan_progress(callbacks))
    data_seconds = time.perf_counter() - started
    result = fit(dataset, config, out, callbacks)
    result.data_seconds = data_seconds
    return result
