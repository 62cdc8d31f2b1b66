"""Writing a run: from a resolved run (`convnet.plan.resolve`) to a finished run folder.

`make_run` reads top to bottom: the data's report and the plan shown, the run prepared,
its folder claimed, the epochs trained (checkpointed, stoppable by signals, held to the
time budget), the test split scored and the run written.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from convnet.data.dataset import Dataset
from convnet.errors import DataError, Interrupted
from convnet.make import claim
from convnet.make.early import EarlyModels
from convnet.make.record import check_weights, run_record, start_record
from convnet.make.resume import Checkpoints, StopOnSignals, restore
from convnet.network import PRESETS
from convnet.plan.budget import REPORT_SECONDS, Budget, scored_after
from convnet.plan.loading import training_seconds
from convnet.plan.resolve import Resolved
from convnet.plan.start import describe
from convnet.runs.calibration import FEWEST, NONE, Calibration, calibrate
from convnet.runs.evaluate import Evaluation, Scored
from convnet.runs.folders import RunFolder, choose_run_dir
from convnet.runs.format import (
    MetricsFile,
    RunRecord,
    sha256,
    weights_bytes,
    write_metrics,
    write_run,
)
from convnet.runs.predictor import Predictor, evaluate_sharded
from convnet.runs.run import Run
from convnet.runs.unknown import FIT_MOST, UNKNOWN_FILE, Detector, fit_detector
from convnet.training import checkpoint
from convnet.training.callbacks import Callback, EarlyStopping, EpochStats, TrainStart
from convnet.training.config import TrainConfig
from convnet.training.distributed import barrier, world
from convnet.training.setup import Prepared
from convnet.training.speed import autocast
from convnet.training.threads import CpuThreads


@dataclass(repr=False)
class TrainResult:
    """What `convnet.train` returns: the run (also on disk at ``path``) and how it went."""

    run: Run
    path: Path
    history: list[EpochStats]
    best_epoch: int
    test: Evaluation | None
    seconds: float  # training, evaluation and saving
    data_seconds: float = 0.0  # loading the data (decode or cache read) before training
    stopped_early: int | None = None  # the epoch `patience` stopped at, if it did
    after_seconds: float = 0.0  # of `seconds`: after the epochs (test score, calibration, files)
    # the kept weights' raw logits on "validation" and "test", for the report drawn next
    scored: dict[str, Scored] = field(default_factory=dict)

    @property
    def report_seconds(self) -> float:
        """About what `convnet.explain.report` will take on this run: the pictures drawn,
        and the test split scored again where its logits are not at hand (torchrun)."""
        rescored = self.test is not None and "test" not in self.scored
        return REPORT_SECONDS + (self.after_seconds if rescored else 0.0)

    def __repr__(self) -> str:
        tested = "" if self.test is None else f", test accuracy {self.test.accuracy:.2%}"
        return (f"TrainResult({self.path}: {len(self.history)} epochs in "
                f"{self.seconds:.0f} s, best epoch {self.best_epoch}{tested})")

    def _repr_html_(self) -> str:
        """In a notebook: the run, with its test split's full evaluation."""
        from convnet.runs.display import run_html

        return run_html(self.run, self.test)


def make_run(resolved: Resolved, out: str | Path | None, callbacks: Sequence[Callback],
             started: float, early: str | Path | None = None) -> TrainResult:
    """Train ``resolved`` and write its run folder (``out``; default under ``runs/``);
    a time budget counts from ``started`` (a `time.perf_counter` value); ``early``: a
    folder for the model so far (`convnet.make.early`)."""
    config, dataset = resolved.config, resolved.dataset
    _show_data_and_plan(resolved, callbacks)
    run = resolved.prepare()
    if early is not None and world().primary:
        # first: written before the others are told of the epoch (the studio looks then)
        callbacks = [EarlyModels(early, run, dataset, config), *callbacks]
    if resolved.start is not None:
        notifier(callbacks)(describe(resolved.start, run.head_phase))
    info = start_record(run, dataset, config, resolved.plan_record)
    if resolved.resume is not None:
        folder = claim.reclaim(resolved.resume.folder)
        restore(run, resolved.resume, config, notifier(callbacks))
    else:
        folder = claim.claim(lambda: _wanted(resolved, run, out), out is None, info)
    _announce(run, dataset, config, folder, callbacks)
    trained_from = time.perf_counter()
    early = EarlyStopping(lambda: run.state.best, config.patience)
    with claim.guarded(folder, new=resolved.resume is None):
        threads = _train(run, resolved, folder, callbacks, early, info, started)
        saving_from = time.perf_counter()
        network, test, record, scored = _save(run, resolved, folder, early.stopped_at, info,
                                              threads)
    state, now = run.state, time.perf_counter()
    result = TrainResult(Run(network.cpu(), record, folder.path), folder.path, state.history,
                         state.best.epoch, test, now - trained_from, resolved.data_seconds,
                         early.stopped_at, now - saving_from, scored)
    for callback in callbacks:
        callback.on_train_end(result)
    return result


def _show_data_and_plan(resolved: Resolved, callbacks: Sequence[Callback]) -> None:
    """The data scan's report and the plan, told to the callbacks before training; with
    ``strict``, a scan that found problems stops here."""
    report = resolved.dataset.report
    if report is not None:
        for callback in callbacks:
            callback.on_data_report(report)
        blocking = report.blocking()
        if resolved.config.strict and blocking:
            raise DataError(f"strict=True: the data scan found {len(blocking)} problem(s) "
                            "(listed above); training did not start. Fix or remove those "
                            "files, or train without strict to skip them.", report)
    if resolved.plan is not None:
        for callback in callbacks:
            callback.on_plan(resolved.plan)


def _wanted(resolved: Resolved, run: Prepared, out: str | Path | None) -> Path:
    """The folder a new run asks for: ``out``, or ``runs/<data>-<network>-<time>``."""
    plan = resolved.plan
    named = run.arch if run.arch in PRESETS else \
        "auto" if plan and plan.designed else "custom"
    return choose_run_dir(out, f"{resolved.dataset.name}-{named}")


def _announce(run: Prepared, dataset: Dataset, config: TrainConfig, folder: RunFolder,
              callbacks: Sequence[Callback]) -> None:
    if world().active:
        notifier(callbacks)(f"{world().size} processes, {run.batches.batch_size} images "
                            f"each per step: a global batch of {config.batch_size}")
    if run.state.balanced and config.epochs and run.val_split is not None and \
            len(run.val_split):
        notifier(callbacks)(f"the classes are weighed (balance={run.balancing}), so the "
                            "epoch kept is the one with the best balanced accuracy (mean "
                            "recall over the classes) on the validation images")
    for callback in callbacks:
        callback.on_train_start(TrainStart(
            config.epochs, run.batches.steps, len(run.train_split), len(run.val_split or []),
            len(dataset.test or []), str(run.device),
            run.arch if run.arch in PRESETS else run.network.spec,
            run.network.num_params, str(folder.path),
            run.head_val_acc))


def scorer(run: Prepared, classes: list[str], config: TrainConfig,
           calibration: Calibration = NONE):
    """Scores a split; under torchrun every rank scores its part and the counts are summed.
    The epochs' validation scores (not ``honest``) run at the training's precision: they
    only rank the epochs, and bf16 passes take half the time of fp32 ones on a CPU that
    has it; what the run records and answers with is scored in fp32."""
    here = world()

    def score(network: torch.nn.Module, split, honest: bool = False) -> Evaluation:
        predictor = _predictor(run, classes, config, network, calibration)
        with autocast(run.device, None if honest else run.loop.autocast_dtype):
            if not here.active:
                return predictor.evaluate(split, honest)
            return evaluate_sharded(predictor, split, here.rank, here.size)
    return score


def _predictor(run: Prepared, classes: list[str], config: TrainConfig,
               network: torch.nn.Module, calibration: Calibration = NONE) -> Predictor:
    return Predictor(network, run.normalization, classes, run.flip_tta,
                     config.eval_batch_size, run.batches.memory_format, calibration)


def _train(run: Prepared, resolved: Resolved, folder: RunFolder,
           callbacks: Sequence[Callback], early: EarlyStopping, info: dict,
           started: float) -> dict:
    """The epochs: checkpointed, stoppable by signals, held to the time budget. Returns
    how the CPU threads were set, for the record."""
    config, here = resolved.config, world()
    threads = CpuThreads(config.threads, run.device, notifier(callbacks),
                         share=here.local_size)
    saver = Checkpoints(folder.path, run.state, info, config.checkpoint_every)
    # only the primary process writes; the others train beside it
    writers = [MetricsFile(folder.path, run.state), *callbacks] if here.primary else []
    signals = StopOnSignals()  # under torchrun, torchrun stops the processes
    score = scorer(run, resolved.dataset.classes, config)
    budget = [] if config.time is None else [Budget(
        run.loop, config, started + training_seconds(config, measured=True),
        resolved.plan.most_epochs if resolved.plan else config.epochs, callbacks,
        _scored_after(run, resolved.dataset))]
    if budget:
        score = budget[0].timed(score)  # what scoring costs, for the work after the epochs
    with threads, (contextlib.nullcontext() if here.active else signals):
        try:
            run.loop.run(run.val_split, score,
                         [threads, signals, *budget, saver, *writers, early])
        except Interrupted:
            saver.save()  # the state stands after a whole step: resume goes on from it
            raise
    return threads.describe()


def _scored_after(run: Prepared, dataset: Dataset) -> tuple[int, int]:
    """Images the network sees after the epochs (`scored_after`): the validation and test
    splits as the run ends (the report reuses their logits), the detector's training
    images."""
    return scored_after(len(run.val_split or ()), len(dataset.test or ()),
                        len(run.train_split))


def _save(run: Prepared, resolved: Resolved, folder: RunFolder, stopped_early: int | None,
          info: dict, threads: dict
          ) -> tuple[torch.nn.Module, Evaluation | None, RunRecord, dict[str, Scored]]:
    """The kept epoch's weights, scored on the test split (by every rank) and written with
    the run record by the primary process; with the splits' logits, for the report."""
    config, dataset, here = resolved.config, resolved.dataset, world()
    network = run.network
    network.load_state_dict(run.state.best_weights)  # the kept epoch, averaged or not
    check_weights(network)
    network = network.to(memory_format=torch.contiguous_format)
    calibration, detector, scored = _fitted(run, network, config)
    test, test_logits = _tested(run, dataset, config, network, calibration)
    if test_logits is not None:
        scored["test"] = test_logits
    weights = weights_bytes(network)
    record = run_record(run, dataset, config, test, sha256(weights), stopped_early,
                        calibration)
    files = {} if detector is None else {UNKNOWN_FILE: detector.to_bytes()}
    if detector is not None:
        record = replace(record, unknown={
            "kind": detector.kind, "file": UNKNOWN_FILE,
            "sha256": sha256(files[UNKNOWN_FILE]), "val_images": len(detector.known)})
    if info["plan"] is not None:
        record = replace(record, plan=info["plan"])
    record.speed.update({**threads, "processes": here.size})
    if here.primary:
        if not run.state.history:  # the head alone: a header, and no curves to draw
            write_metrics(folder.path, [])
        write_run(folder.path, record, weights,
                  None if dataset.report is None else dataset.report.to_dict(), files)
        checkpoint.remove(folder.path)
        folder.release()
    barrier()  # every rank returns once the run is on disk
    return network, test, record, scored


def _tested(run: Prepared, dataset: Dataset, config: TrainConfig, network: torch.nn.Module,
            calibration: Calibration) -> tuple[Evaluation | None, Scored | None]:
    """The test split's scores, and its raw logits (not under torchrun, where each rank
    scores a part of it)."""
    test = dataset.test
    if test is None:
        return None, None
    if world().active:
        return scorer(run, dataset.classes, config, calibration)(network, test, True), None
    predictor = _predictor(run, dataset.classes, config, network, calibration)
    logits = predictor.logits(test.images)  # (N, classes), before calibration
    return predictor.evaluate(test, logits=logits), Scored.of(test.images, logits)


def _fitted(run: Prepared, network: torch.nn.Module, config: TrainConfig
            ) -> tuple[Calibration, Detector | None, dict[str, Scored]]:
    """What is fitted on the kept weights once they are chosen (every rank fits the same):
    the temperature on the validation images' logits, and the "unknown" detector (class
    means and covariance of training images' embeddings, the validation images' scores).
    The validation images go through the network once, for both (and for the report:
    their logits are returned as "validation")."""
    val = run.val_split
    if val is None or not len(val):
        return Calibration(note="no validation images to fit a temperature on"), None, {}
    predictor = Predictor(network, run.normalization, [str(i) for i in range(
        network.num_classes)], run.flip_tta, config.eval_batch_size)
    phase = run.head_phase or {}
    # the head alone scored them so before it was refitted with them (`setup._refit`):
    # the calibration and the detector's threshold come from a head that never saw them
    if "val_logits" in phase:
        logits, val_embedded = phase["val_logits"], phase["val_raw"]
    else:
        logits, val_embedded = predictor.outputs(val.images, embed=True)
    calibration = calibrate(logits, val.labels)
    scored = {"validation": Scored.of(val.images, logits)}
    if len(val) < FEWEST:
        return calibration, None, scored
    train = run.train_split
    chosen = torch.randperm(len(train), generator=torch.Generator().manual_seed(
        config.seed))[:FIT_MOST]
    held = phase.get("raw")  # the head alone: the body never moved
    if held is not None:
        embedded = held[chosen]  # (n, D), computed with the head's features
    else:
        # class means and a covariance average over many images: the training's precision
        # is enough for them (bf16 passes took 0.55-0.8 of fp32's for EfficientNet-Lite0
        # on a CPU with AVX-512 BF16); the validation scores above, which set the
        # threshold, are taken as the run answers
        with autocast(run.device, run.loop.autocast_dtype):
            _, embedded = predictor.outputs(train.images[chosen], embed=True)  # (n, D)
    return calibration, fit_detector((embedded.cpu(), train.labels[chosen].cpu()),
                                     val_embedded.cpu(), network.num_classes), scored


def notifier(callbacks: Sequence[Callback]):
    """A function that tells every callback a notice line."""
    def notify(line: str) -> None:
        for callback in callbacks:
            callback.on_notice(line)
    return notify
