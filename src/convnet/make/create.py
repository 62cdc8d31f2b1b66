"""Making a run: `train` (options in, a run folder out) and `fit` (the same on data already
loaded).

Both read top to bottom: the settings (new, or an interrupted run's own), the choices that
are measured first (scratch or ImageNet, the lr range test), the one resolution of a run
(`convnet.plan.resolve`), and `convnet.make.write.make_run`, which trains it and writes its
folder. The training stage (`convnet.training`) does the fitting and knows no folders.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from convnet.allocator import keep_freed_memory
from convnet.data.dataset import Dataset
from convnet.errors import ConvnetError
from convnet.make import trackers
from convnet.make.resume import after_restart, check_processes, resume_config
from convnet.make.write import TrainResult, make_run, notifier
from convnet.plan import choose, lr_finder
from convnet.plan.resolve import Resume, resolve
from convnet.runs.folders import check_writable
from convnet.training.callbacks import Callback
from convnet.training.config import TrainConfig
from convnet.training.distributed import join
from convnet.training.setup import pick_device
from convnet.training.threads import check_threads

__all__ = ["TrainResult", "fit", "train"]


def train(config: TrainConfig | None = None, *, out: str | Path | None = None,
          callbacks: Sequence[Callback] = (), resume: str | Path | None = None,
          started: float | None = None, early: str | Path | None = None,
          **options: Any) -> TrainResult:
    """Train a CNN and write its run folder.

    Args:
        config: a full `TrainConfig`; or give its fields as keyword ``options``.
        out: run folder to create (must not hold files); default ``runs/<data>-<arch>-<time>``.
        callbacks: progress bars, loggers (see `convnet.training.callbacks.Callback`).
        resume: an interrupted run's folder, continued with its own config; ``options``
            may only raise ``epochs`` or set ``threads``, ``eval_batch_size`` and
            ``checkpoint_every``. ``started``: when a ``time`` budget starts (default: now).
        early: a folder for the model so far, while it trains (`convnet.make.early`).

    Raises:
        ConvnetError: for bad options, data or spec, before anything is written;
            `Interrupted` after SIGINT/SIGTERM, once the checkpoint is written.

    >>> convnet.train(data="shapes", epochs=2).test.accuracy  # doctest: +SKIP
    """
    here = join(pick_device(options.get("device", "auto") if config is None else config.device))
    find = options.get("lr") == lr_finder.FIND  # the lr from a range test first
    config, resumed = _settings(config, out, resume, {**options, "lr": None} if find else options)
    trackers.check(config)  # TensorBoard, MLflow: installed, before any work
    callbacks = [*callbacks, *trackers.trackers(config)] if here.primary else []  # rank 0's
    _ready(config.threads)
    started = time.perf_counter() if started is None else started
    notify, sweep = notifier(callbacks), None
    if resumed is None:
        check_writable(out)  # before the data is loaded and the model trained
        config = choose.choose(config, started, notify) if choose.applies(config) else config
        config, sweep = lr_finder.when_asked(config, find, started, notify)
    resolved = resolve(config, started=started, resume=resumed, notify=notify,
                       progress=_scan_progress(callbacks))
    result = make_run(resolved, out, callbacks, started, early)
    if here.primary:
        lr_finder.keep(sweep, result.path)
    return result


def fit(dataset: Dataset, config: TrainConfig, out: str | Path | None = None,
        callbacks: Sequence[Callback] = (), *, started: float | None = None) -> TrainResult:
    """`train` on a dataset already loaded (its options left unset planned from it)."""
    join(pick_device(config.device))  # under torchrun: the process group, once
    _ready(config.threads)
    check_writable(out)  # before the network is built and trained
    started = time.perf_counter() if started is None else started
    resolved = resolve(config, started=started, dataset=dataset, notify=notifier(callbacks))
    return make_run(resolved, out, callbacks, started)


def _ready(threads: int | None) -> None:
    """The process set for the work: the threads asked checked, and freed memory kept for
    reuse as the CLI keeps it (`convnet.allocator`: photo passes without page faults)."""
    check_threads(threads)
    keep_freed_memory()


def _settings(config: TrainConfig | None, out: str | Path | None, resume: str | Path | None,
              options: dict[str, Any]) -> tuple[TrainConfig, Resume | None]:
    """The config to train with, and the run to resume (if any): one given with
    ``resume``, or the one torchrun's restarted workers were writing."""
    restarted = after_restart(out)
    if restarted is not None:
        return TrainConfig.from_dict(restarted.info["config"]), restarted
    if resume is None:
        if config is None:
            return TrainConfig.from_dict(options), None
        return (TrainConfig.from_dict({**config.to_dict(), **options}) if options
                else config), None
    if config is not None or out is not None:
        raise ConvnetError("resume continues a run with its own config and folder; give "
                           "neither config nor out, only the settings to change.")
    config, state, info = resume_config(Path(resume), options)
    check_processes(Path(resume), info)
    return config, Resume(Path(resume), state, info)


def _scan_progress(callbacks: Sequence[Callback]):
    def report(done: int, total: int) -> None:
        for callback in callbacks:
            callback.on_scan(done, total)
    return report
