"""The one seam between options and training: a config, the weights it starts from, its
data and its plan, resolved in one place and in one order.

Every path that starts or restarts training goes through `resolve`: `convnet.train` (new,
resumed from a checkpoint, or resumed from a run stopped before its first one), the lr
range test, the scratch-or-ImageNet choice, the suspects' folds and `convnet plan`. The
order is fixed here:

1. the starting weights ``init`` names, and the network they belong to;
2. the image size a folder is decoded at (planned from its headers), then the data;
3. the plan for every option left unset, with the data loaded.

(The measurements that choose an option before that, scratch or ImageNet and the lr range
test, resolve their own brief runs with it: `convnet.plan.choose`, `convnet.plan.lr_finder`.)

`Resolved.prepare` then builds what trains, and a run resumed before its first checkpoint
is prepared as a new one is (its head fitted first), so it goes through the same phases as
a run never interrupted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from convnet.data.dataset import Dataset
from convnet.data.scan import Progress
from convnet.errors import RunError
from convnet.plan import loading
from convnet.plan.planner import Plan
from convnet.plan.start import channels_of, check_size, start_of, with_start
from convnet.training.config import TrainConfig
from convnet.training.distributed import barrier, broadcast, world
from convnet.training.finetune import Start
from convnet.training.setup import Prepared, prepare

Notify = Callable[[str], None]


@dataclass(frozen=True)
class Resume:
    """An unfinished run to continue: its folder, the checkpoint's state (None when it
    stopped before its first checkpoint: it starts again from its beginning) and the
    checkpoint's info (the settings and plan record it was started with)."""

    folder: Path
    state: dict[str, Any] | None
    info: dict[str, Any]


@dataclass(frozen=True)
class Resolved:
    """A run ready to be prepared: nothing in it is ``auto`` or unplanned any more."""

    config: TrainConfig  # as the run uses it: the plan applied, the start's network
    start: Start | None  # the trained weights it begins from
    dataset: Dataset
    plan: Plan | None  # made for the options left unset (None: all given, or resumed)
    plan_record: dict[str, Any] | None  # what the run keeps of its plan
    resume: Resume | None = None  # the unfinished run it continues
    data_seconds: float = 0.0  # from the start of resolving to the data loaded

    @property
    def fresh(self) -> bool:
        """Whether training starts from the beginning (a new run, or one resumed before
        its first checkpoint): then the head is fitted first, as in any new run."""
        return self.resume is None or self.resume.state is None

    def prepare(self, config: TrainConfig | None = None) -> Prepared:
        """The network, batches, state and loop for this run (``config``: the same run
        with other settings, e.g. a brief version of it)."""
        return prepare(self.dataset, config or self.config, self.start, fresh=self.fresh)


def resolve(config: TrainConfig, *, started: float | None = None,
            resume: Resume | None = None, dataset: Dataset | None = None,
            plan: bool | None = None, progress: Progress | None = None,
            notify: Notify | None = None) -> Resolved:
    """``config`` resolved into a run ready to prepare.

    Args:
        config: the options; for ``resume``, the run's saved config.
        started: a `time.perf_counter` value a time budget counts from (default: now).
        resume: an unfinished run to continue: nothing is planned again, and its data
            must be what it trained on.
        dataset: data already loaded (default: ``config.data``, decoded as planned).
        plan: None plans the options left unset; True plans even when all are given
            (to show the plan); False plans nothing but the decoding size.
        progress, notify: told of decoding, and of what was chosen and why.

    Raises:
        ConvnetError: for bad options, weights or data, before anything is trained.
        RunError: when a resumed run's data is not what it trained on.
    """
    started = time.perf_counter() if started is None else started
    start = start_of(config)
    config = with_start(config, start)
    before = None
    if dataset is None:
        before = None if resume is not None else _shared(
            lambda: loading.before_loading(config, started))
        dataset = _load(config, before, start, progress, notify)
    data_seconds = time.perf_counter() - started
    planning = resume is None and (plan is True or plan is None and not config.planned)
    # data in memory whose fine-tune plan chooses its side is checked at that side
    resampling = planning and loading.resampled(config, dataset, before)
    if not resampling:
        check_size(start, dataset.input_shape, dataset.name)
    if resume is not None:
        _check_same_data(resume, dataset)
        return Resolved(config, start, dataset, None, resume.info.get("plan"), resume,
                        data_seconds)
    made = _shared(lambda: loading.with_data(dataset, config, started, before)) \
        if planning else None
    if made is not None:  # data in memory at the planned side: each rank resamples alike
        dataset = loading.sized(dataset, made.config)
    if resampling:
        check_size(start, dataset.input_shape, dataset.name)
    return Resolved(config if made is None else made.config, start, dataset, made,
                    None if made is None else made.to_dict(), None, data_seconds)


def preview(config: TrainConfig | None = None, **options) -> Plan:
    """The plan `train` would follow, without training: the data is loaded (a folder is
    decoded at its planned size, and cached for the run that follows) and checked.

    >>> convnet.plan.preview(data="digits").headline()  # doctest: +SKIP
    'planned from 8,000 grayscale training images of 28 px, 10 classes: ...'
    """
    config = TrainConfig.from_dict({**(config.to_dict() if config else {}), **options})
    return resolve(config, plan=True).plan


def _shared(make: Callable[[], Any]) -> Any:
    """Made by the primary process and sent to the others (under torchrun), else made."""
    return broadcast(make() if world().primary else None)


def _load(config: TrainConfig, before: Plan | None, start: Start | None,
          progress: Progress | None, notify: Notify | None) -> Dataset:
    """The data; under torchrun rank 0 scans and decodes a folder once, the others then
    read its cache."""
    primary = world().primary
    if not primary:
        barrier()
    dataset = loading.load(config, before, progress, channels_of(start), notify)
    if primary:
        barrier()
    return dataset


def _check_same_data(resume: Resume, dataset: Dataset) -> None:
    if dataset.fingerprint() != resume.info["fingerprint"]:
        raise RunError(f"resume: the data {dataset.name!r} is not what {resume.folder} was "
                       "trained on (its fingerprint differs: images, labels or classes "
                       "changed). Give the same data, or train a new run.")


def brief(resolved: Resolved, epochs: int) -> Resolved:
    """The same run for ``epochs`` epochs, with no time budget or patience (a measurement)."""
    return replace(resolved, config=replace(resolved.config, epochs=epochs, time=None,
                                            patience=None))
