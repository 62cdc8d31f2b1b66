"""Never losing a run: checkpoints written while it trains, a clean stop on Ctrl-C or
SIGTERM, and the config and state a resumed run continues from.

A checkpoint is written after every epoch and, inside long epochs, every
``checkpoint_every`` minutes (`Checkpoints`, a callback). The first SIGINT or SIGTERM asks
the loop to stop after its current step (`StopOnSignals`); the caller then writes a
checkpoint, and the run stays in its folder, unfinished, until ``--resume`` continues it.
A second SIGINT stops at once; the last checkpoint still stands.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from convnet.errors import RunError
from convnet.plan.resolve import Resume
from convnet.runs.folders import check_not_held, start_settings
from convnet.training import checkpoint
from convnet.training.callbacks import Callback, EpochStats
from convnet.training.config import TrainConfig
from convnet.training.distributed import restarted, world
from convnet.training.optim import schedule_from
from convnet.training.setup import Prepared
from convnet.training.state import TrainState

# Settings a resumed run may change: they do not change what the run computes.
FREE_ON_RESUME = {"threads", "eval_batch_size", "checkpoint_every"}


class Checkpoints(Callback):
    """Writes the run's checkpoint after each epoch and every ``minutes`` inside one."""

    def __init__(self, folder: Path, state: TrainState, info: dict[str, Any], minutes: float):
        self.folder, self.state, self.info = folder, state, info
        self.seconds = minutes * 60
        self.last = time.monotonic()

    def save(self) -> None:
        """Write the checkpoint. Under torchrun every rank calls this at the same point (it
        gathers their generators) and rank 0 alone writes."""
        state = self.state
        where = {"epoch": state.epoch, "step": state.step,
                 "in_epoch": None if state.progress is None else
                 [state.progress.epoch, state.progress.done]}
        contents = state.state_dict()
        if world().primary:
            checkpoint.save(self.folder, contents, {**self.info, **where,
                                                    "processes": world().size})
        self.last = time.monotonic()

    def on_step(self, epoch: int, step: int, loss: float, accuracy: float,
                images_per_s: float) -> None:
        # under torchrun only after epochs: ranks must all save at the same step
        if self.seconds > 0 and not world().active and \
                time.monotonic() - self.last >= self.seconds:
            self.save()

    def on_epoch_end(self, stats: EpochStats) -> None:
        self.save()


class StopOnSignals(Callback):
    """While training (``with`` it): the first SIGINT/SIGTERM makes the loop stop after its
    step (`stop_after_step` names the signal), a second SIGINT stops at once. Only the
    main thread can take signals; elsewhere this does nothing."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> StopOnSignals:
        if threading.current_thread() is threading.main_thread():
            self.previous = {number: signal.signal(number, self._handle)
                             for number in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc: object) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        self.previous, self.received = {}, []

    def _handle(self, number: int, frame: object) -> None:
        if self.received and number == signal.SIGINT:
            raise KeyboardInterrupt  # the second Ctrl-C: now
        self.received.append(signal.Signals(number).name)

    def stop_after_step(self) -> str | None:
        return self.received[0] if self.received else None


def _saved(folder: Path) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(state, info) of the newest checkpoint; (None, the start settings) for a run that
    stopped before its first one."""
    if folder.is_dir() and checkpoint.exists(folder):
        return checkpoint.load(folder)
    settings = start_settings(folder)
    if settings is None:
        raise RunError(f"resume={str(folder)!r} holds no checkpoint to resume from. Give "
                       "the folder of an interrupted run (`convnet runs` lists them).")
    return None, settings


def resume_config(folder: Path, options: dict[str, Any]
                  ) -> tuple[TrainConfig, dict[str, Any] | None, dict[str, Any]]:
    """(config, state dict, info) to continue the unfinished run in ``folder`` (no state
    dict for a run that stopped before its first checkpoint: it starts again).

    ``options`` are settings given again on the command line or to `train`; each must
    equal the saved one, except `FREE_ON_RESUME` and ``epochs`` (to train longer).

    Raises:
        RunError: for a folder without a readable checkpoint, a finished run, or changed
            settings (each named).
    """
    folder = Path(folder)
    if (folder / "model.json").is_file():
        raise RunError(f"{folder} is a finished run; there is nothing to resume. Train a "
                       "new run, e.g. with more epochs.")
    check_not_held(folder)
    state, info = _saved(folder)
    saved = info["config"]
    changed = [f"{key} ({saved.get(key)!r} in the run, {value!r} now)"
               for key, value in options.items()
               if key not in FREE_ON_RESUME | {"epochs"} and saved.get(key) != value]
    if changed:
        raise RunError(f"resume: these settings differ from the run's and would change its "
                       f"result: {'; '.join(changed)}. Leave them out to resume as it was.")
    if options.get("epochs", saved["epochs"]) < saved["epochs"]:
        raise RunError(f"resume: epochs={options['epochs']} is fewer than the run's "
                       f"{saved['epochs']}; epochs may only be raised.")
    config = TrainConfig.from_dict({**saved, **{k: options[k] for k in options
                                                if k in FREE_ON_RESUME | {"epochs"}}})
    return config, state, info


def restore(run: Prepared, resume: Resume, config: TrainConfig,
             notify: Callable[[str], None]) -> None:
    """Put the saved state back; with more epochs than saved, re-plan the schedule for
    them (stepped on to where the run stands) and say so."""
    if resume.state is None:
        notify(f"resuming {resume.folder} from its start: it stopped before its first "
               "checkpoint")
        return
    run.state.load_state_dict(resume.state)
    progress = run.state.progress
    notify(f"resuming {resume.folder} at epoch "
           + (f"{progress.epoch} step {progress.done + 1}" if progress else
              f"{run.state.epoch + 1}, its start"))
    saved_epochs = resume.info["config"]["epochs"]
    if config.epochs == saved_epochs:
        return
    run.state.scheduler = schedule_from(run.state.optimizer, config,
                                        run.batches.steps * config.epochs, run.state.step)
    notify(f"epochs raised from {saved_epochs} to {config.epochs}: the learning-rate "
           "schedule is re-planned over all of them from this step on.")


def after_restart(out: str | Path | None) -> Resume | None:
    """After torchrun restarted the workers (``--max-restarts``), the run they were writing,
    to go on from its last checkpoint with its own config; None otherwise."""
    if out is None or not (world().active and restarted()):
        return None
    folder = Path(out)
    if (folder / "model.json").is_file():
        return None
    if not checkpoint.exists(folder):  # the workers stopped before the first checkpoint
        info = start_settings(folder)
        return None if info is None else Resume(folder, None, info)
    state, info = checkpoint.load(folder)
    check_processes(folder, info)
    return Resume(folder, state, info)


def check_processes(folder: Path, info: dict) -> None:
    """Under torchrun, a checkpoint goes on only with the number of processes that wrote
    it: each rank's share of the batches and its generator were saved for that number."""
    saved = info.get("processes", 1)
    if world().active and saved != world().size:
        raise RunError(f"{folder} was checkpointed by {saved} process(es), not "
                       f"{world().size}; resume it with --nproc-per-node {saved} (or in one "
                       "process, without torchrun).")
