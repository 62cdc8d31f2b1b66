"""Making a run: load the data, train, score the test split, write the run folder.

`train` reads top to bottom. The training stage (`convnet.train`) does the fitting and knows
no folders; this module decides where the run goes, stages it in a hidden folder, writes
metrics.csv after every epoch, and renames the folder into place only when the run is
complete, so a failed run leaves nothing behind and an existing run is never overwritten.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from convnet import data as datasets
from convnet.data.dataset import Dataset
from convnet.data.preprocess import Preprocess
from convnet.errors import ConvnetError, DataError, DiskFull, Interrupted, TrainingError
from convnet.network import PRESETS, resolve_arch
from convnet.runs import choose, lr_finder, planning, trackers
from convnet.runs.evaluate import Evaluation
from convnet.runs.folders import RunFolder, check_writable, choose_run_dir
from convnet.runs.format import (
    DataInfo,
    Metrics,
    MetricsFile,
    RunRecord,
    sha256,
    weights_bytes,
    write_run,
)
from convnet.runs.initial import channels_of, check_size, describe, start_of, with_start
from convnet.runs.predictor import Predictor, evaluate_sharded
from convnet.runs.resume import (
    Checkpoints,
    Resume,
    after_restart,
    check_processes,
    check_resumed_data,
    restore,
    resume_config,
    stop_on_signals,
)
from convnet.runs.run import Run
from convnet.train import checkpoint
from convnet.train.budget import Budget
from convnet.train.callbacks import Callback, EpochStats, TrainStart
from convnet.train.config import TrainConfig
from convnet.train.distributed import barrier, broadcast, join, world
from convnet.train.finetune import Start
from convnet.train.planner import Plan
from convnet.train.setup import Prepared, pick_device, prepare
from convnet.train.threads import CpuThreads, check_threads


@dataclass
class TrainResult:
    run: Run
    path: Path
    history: list[EpochStats]
    best_epoch: int
    test: Evaluation | None
    seconds: float  # training, evaluation and saving
    data_seconds: float = 0.0  # loading the data (decode or cache read) before training
    stopped_early: int | None = None  # the epoch `patience` stopped at, if it did


def _check_report(dataset: Dataset, config: TrainConfig,
                  callbacks: Sequence[Callback]) -> None:
    report = dataset.report
    if report is None:
        return
    for callback in callbacks:
        callback.on_data_report(report)
    blocking = report.blocking()
    if config.strict and blocking:
        raise DataError(f"strict=True: the data scan found {len(blocking)} problem(s) "
                        "(listed above); training did not start. Fix or remove those files, "
                        "or train without strict to skip them.", report)


def _scorer(run: Prepared, classes: list[str], config: TrainConfig):
    """Scores a split; under torchrun every rank scores its part and the counts are summed."""
    here = world()

    def score(network: torch.nn.Module, split) -> Evaluation:
        predictor = Predictor(network, run.normalization, classes, run.flip_tta,
                              config.eval_batch_size, run.batches.memory_format)
        if not here.active:
            return predictor.evaluate(split)
        return evaluate_sharded(predictor, split, here.rank, here.size)
    return score


def _record(run: Prepared, dataset: Dataset, config: TrainConfig, test: Evaluation | None,
            weights_sha: str) -> RunRecord:
    best, report, network = run.state.best, dataset.report, run.network
    prep = dataset.preprocess or Preprocess(*dataset.input_shape, config.resize)
    resolved = _resolved(run, config)
    return RunRecord(
        spec=network.spec, arch=run.arch, classes=list(dataset.classes),
        input_shape=network.input_shape, preprocess=prep, normalization=run.normalization,
        config=resolved, augment=run.ops, balance=run.balancing,
        tta="flip" if run.flip_tta else "none", speed=run.speed(),
        data=DataInfo(dataset.name, dataset.source, dataset.fingerprint(),
                      len(run.train_split), len(run.val_split or []), len(dataset.test or []),
                      [] if report is None else
                      [{"path": p.path, "reason": p.reason} for p in report.problems]),
        validation=run.validation, params=network.num_params,
        metrics=Metrics(best.epoch, best.val_acc, best.val_loss, None if test is None else {
            "accuracy": test.accuracy, "loss": test.loss, "macro": test.macro,
            "balanced_accuracy": test.balanced_accuracy}, run.loop.stopped_early),
        weights_sha256=weights_sha)


def _resolved(run: Prepared, config: TrainConfig) -> TrainConfig:
    """The config as used: no ``auto`` left, a folder as a path that works from anywhere."""
    return replace(config, arch=run.arch, lr=config.peak_lr,
                   data=datasets.portable(config.data))


def _check_weights(network: torch.nn.Module) -> None:
    """A run is never saved with NaN or infinite weights (nothing could use it)."""
    bad = [name for name, tensor in network.state_dict().items()
           if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())]
    if bad:
        raise TrainingError(f"The kept weights hold NaN or infinite values ({', '.join(bad)}); "
                            "the run was not saved. Try a smaller lr.")


def _announce(run: Prepared, dataset: Dataset, config: TrainConfig, folder: RunFolder,
              callbacks: Sequence[Callback]) -> None:
    if world().active:
        _notify(callbacks)(f"{world().size} processes, {run.batches.batch_size} images each "
                           f"per step: a global batch of {config.batch_size}")
    for callback in callbacks:
        callback.on_train_start(TrainStart(
            config.epochs, run.batches.steps, len(run.train_split), len(run.val_split or []),
            len(dataset.test or []), str(run.device),
            run.arch if run.arch in PRESETS else run.network.spec,
            run.network.num_params, str(folder.path)))


def _claim(wanted: Path, automatic: bool) -> RunFolder:
    """The run's folder, claimed by the primary process and named to every rank."""
    here = world()
    folder = RunFolder.claim(wanted, automatic) if here.primary else None
    return RunFolder(Path(broadcast(str(folder.path) if folder else None)))


def _planned(dataset: Dataset, config: TrainConfig, started: float, before: Plan | None,
             callbacks: Sequence[Callback]) -> Plan | None:
    """The plan for the options left unset (made once, by the primary process), shown to
    the callbacks; None when every option was given."""
    if config.planned:
        return None
    plan = broadcast(planning.with_data(dataset, config, started, before)
                     if world().primary else None)
    for callback in callbacks:
        callback.on_plan(plan)
    return plan


def fit(dataset: Dataset, config: TrainConfig, out: str | Path | None = None,
        callbacks: Sequence[Callback] = (), resume: Resume | None = None, *,
        started: float | None = None, before: Plan | None = None,
        start: Start | None = None) -> TrainResult:
    """Train on an already loaded dataset and write the run; see `train`.

    Options left unset are planned from the data first (`convnet.runs.planning`); a time
    budget counts from ``started`` (a `time.perf_counter` value; default: now).
    """
    started = time.perf_counter() if started is None else started
    join(pick_device(config.device))  # under torchrun: the process group, once
    check_threads(config.threads)
    start = start or start_of(config)
    config = with_start(config, start)
    check_size(start, dataset.input_shape, dataset.name)
    _check_report(dataset, config, callbacks)
    plan = None if resume is not None else _planned(dataset, config, started, before,
                                                    callbacks)
    config = config if plan is None else plan.config
    arch = resolve_arch(config.arch, dataset.input_shape)
    notify = _notify(callbacks)
    if resume is not None:
        check_resumed_data(resume, dataset)
        folder = RunFolder.reclaim(resume.folder) if world().primary else \
            RunFolder(resume.folder)
        plan_record = resume.info.get("plan")
    else:
        plan_record = None if plan is None else plan.to_dict()
        named = arch if arch in PRESETS else "auto" if plan and plan.designed else "custom"
        wanted = choose_run_dir(out, f"{dataset.name}-{named}")
    run = prepare(dataset, config, start, fresh=resume is None)
    if start is not None:
        notify(describe(start, run.head_phase))
    info = _start_record(run, dataset, config, plan_record)
    if resume is not None:
        restore(run, resume, config, notify)
    else:
        folder = _claim(wanted, out is None)
        if world().primary:
            try:
                folder.write_start(info)
            except BaseException:
                folder.discard()  # nothing else is in it yet
                raise
    _announce(run, dataset, config, folder, callbacks)
    trained_from = time.perf_counter()
    deadline = None if config.time is None else \
        started + planning.training_seconds(config)
    try:
        network, test, record = _train_and_save(run, dataset, config, folder, callbacks,
                                                plan, info, deadline)
    except Interrupted as stop:
        stop.folder = str(folder.path)
        _leave(folder)
        raise
    except DiskFull as full:  # the run stays resumable from its last checkpoint, or start
        _leave(folder)
        raise DiskFull(f"{full} Training stopped; free some space, then resume with: "
                       f"convnet train --resume {folder.path}", full.folder,
                       full.needed) from None
    except KeyboardInterrupt:  # a second Ctrl-C: the folder stays resumable as it stands
        _leave(folder)
        raise
    except ConvnetError:
        if resume is None and world().primary:
            folder.discard()  # a failed new run leaves nothing behind
        else:
            _leave(folder)
        raise
    except BaseException:
        if resume is None and world().primary and not checkpoint.exists(folder.path):
            folder.discard()
        else:
            _leave(folder)
        raise
    state = run.state
    result = TrainResult(Run(network.cpu(), record, folder.path), folder.path, state.history,
                         state.best.epoch, test, time.perf_counter() - trained_from,
                         stopped_early=run.loop.stopped_early)
    for callback in callbacks:
        callback.on_train_end(result)
    return result


def _start_record(run: Prepared, dataset: Dataset, config: TrainConfig,
                  plan: dict | None) -> dict:
    """What a run is started from, as written with its folder and with every checkpoint:
    the resolved config, the data's fingerprint and the plan record."""
    return {"config": _resolved(run, config).to_dict(), "fingerprint": dataset.fingerprint(),
            "data": dataset.name, "arch": run.arch, "plan": plan, "processes": world().size}


def _leave(folder: RunFolder) -> None:
    if world().primary:
        folder.leave()


def _train_and_save(run: Prepared, dataset: Dataset, config: TrainConfig, folder: RunFolder,
                    callbacks: Sequence[Callback], plan: Plan | None, info: dict,
                    deadline: float | None):
    """The epochs (checkpointed, stoppable by signals, held to the deadline), the test
    score, the run files."""
    here = world()
    threads = CpuThreads(config.threads, run.device, _notify(callbacks), share=here.local_size)
    saver = Checkpoints(folder.path, run.state, info, config.checkpoint_every)
    score = _scorer(run, dataset.classes, config)
    # only the primary process writes; the others train beside it
    writers = [MetricsFile(folder.path, run.state), *callbacks] if here.primary else []
    signals = contextlib.nullcontext() if here.active else stop_on_signals(run.loop)
    budget = [] if deadline is None else \
        [Budget(run.loop, config, deadline, plan.most_epochs if plan else config.epochs,
                callbacks)]
    with threads, signals:
        try:
            run.loop.run(run.val_split, score, [threads, *budget, saver, *writers])
        except Interrupted:
            saver.save()  # the state stands after a whole step: resume goes on from it
            raise
    network = run.network
    network.load_state_dict(run.state.best_weights)  # the kept epoch, averaged or not
    _check_weights(network)
    network = network.to(memory_format=torch.contiguous_format)
    test = None if dataset.test is None else score(network, dataset.test)  # every rank
    weights = weights_bytes(network)
    record = _record(run, dataset, config, test, sha256(weights))
    if info["plan"] is not None:
        record = replace(record, plan=info["plan"])
    record.speed.update({**threads.describe(), "processes": here.size})
    if here.primary:
        write_run(folder.path, record, weights,
                  None if dataset.report is None else dataset.report.to_dict())
        checkpoint.remove(folder.path)
        folder.release()
    barrier()  # every rank returns once the run is on disk
    return network, test, record


def _notify(callbacks: Sequence[Callback]):
    def notify(line: str) -> None:
        for callback in callbacks:
            callback.on_notice(line)
    return notify


def _scan_progress(callbacks: Sequence[Callback]):
    def report(done: int, total: int) -> None:
        for callback in callbacks:
            callback.on_scan(done, total)
    return report


def _settings(config: TrainConfig | None, out: str | Path | None,
              resume: str | Path | None, options: dict) -> tuple[TrainConfig, Resume | None]:
    """The config to train with, and the run to resume (if any)."""
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


def train(config: TrainConfig | None = None, *, out: str | Path | None = None,
          callbacks: Sequence[Callback] = (), resume: str | Path | None = None,
          started: float | None = None, **options) -> TrainResult:
    """Train a CNN and write its run folder.

    Args:
        config: a full `TrainConfig`; or give its fields as keyword ``options``.
        out: run folder to create (must not hold files); default ``runs/<data>-<arch>-<time>``.
        callbacks: progress bars, loggers (see `convnet.train.callbacks.Callback`).
        resume: the folder of an interrupted run, to continue from its last checkpoint
            with its own config; ``options`` may only raise ``epochs`` or set ``threads``,
            ``eval_batch_size`` and ``checkpoint_every`` (any other must equal the run's).

    Raises:
        ConvnetError: for bad options, data or spec, before anything is written.
        DataError: with ``strict=True``, when the data scan finds bad files.
        Interrupted: after SIGINT/SIGTERM, once the checkpoint is written (``.folder``).

    A ``time`` budget counts from ``started`` (a `time.perf_counter` value; default: the
    call; the command line passes its process's start, so start-up counts too).

    >>> result = convnet.train(data="shapes", epochs=2)  # doctest: +SKIP
    >>> result.test.accuracy  # doctest: +SKIP
    """
    here = join(pick_device(options.get("device", "auto") if config is None else config.device))
    if not here.primary:
        callbacks = ()  # progress, logs and files: the primary process's alone
    resumed = after_restart(out)
    find = options.get("lr") == lr_finder.FIND  # the lr from a range test first
    options = {**options, "lr": None} if find else options
    if resumed is not None:
        config = TrainConfig.from_dict(resumed.info["config"])
    else:
        config, resumed = _settings(config, out, resume, options)
    trackers.check(config)  # TensorBoard, MLflow: installed, before any work
    if here.primary:
        callbacks = [*callbacks, *trackers.trackers(config)]
    if resumed is None:
        check_writable(out)  # before the data is loaded and the model trained
    check_threads(config.threads)
    started = time.perf_counter() if started is None else started
    if resumed is None and choose.applies(config):  # scratch or ImageNet: measured
        config = choose.choose(config, started, _notify(callbacks))
    config, found = lr_finder.when_asked(config, find and resumed is None, started,
                                         _notify(callbacks))
    start = start_of(config)
    config = with_start(config, start)
    before = None if resumed is not None else \
        broadcast(planning.before_loading(config, started) if here.primary else None)
    if not here.primary:
        barrier()  # rank 0 scans and decodes a folder once; the others read its cache
    dataset = planning.load(config, before, _scan_progress(callbacks), channels_of(start),
                            _notify(callbacks))
    if here.primary:
        barrier()
    data_seconds = time.perf_counter() - started
    result = fit(dataset, config, out, callbacks, resumed, started=started, before=before,
                 start=start)
    result.data_seconds = data_seconds
    if here.primary:
        lr_finder.keep(found, result.path)
    return result
