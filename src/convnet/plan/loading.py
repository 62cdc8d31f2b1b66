"""Planning a run: the data's fingerprint, this machine's speed and the user's options become
one `Plan` (`convnet.plan.planner`), in two steps around loading the data.

1. Before a folder is decoded: its size (from file headers and a few decoded samples), so
   that it is decoded once at the planned size.
2. With the data loaded: the network, batch, epochs within the time left, augmentation, and
   flips from a check of the images themselves.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import torch

from convnet import data as datasets
from convnet.data.dataset import Dataset
from convnet.data.dedupe import without_copies
from convnet.data.fingerprint import Fingerprint, of_dataset, of_layout
from convnet.data.layout import Layout
from convnet.data.mirror import mirror_check
from convnet.data.preprocess import Preprocess
from convnet.data.scan import SERIAL_BELOW, Progress, seconds_per_file
from convnet.features import copies
from convnet.plan.finetune import make_finetune_plan
from convnet.plan.planner import Plan, decide_flips, make_plan
from convnet.plan.probe import passes_on, probe_on
from convnet.training.config import TrainConfig, parse_time
from convnet.training.setup import pick_device

# a folder's decoding: files timed one by one at this side, then the whole load took up to
# this multiple of their median per file and core (1.13-1.55 on two photo folders of 550
# and 1,400 files: the pool's start-up, hashing, the cache written; bench/HISTORY.md). With
# the sample's mean instead (`seconds_per_file`) the estimate is 1.03-1.21 of the load on
# those folders and 1.54-1.58 on 600 large PNGs and JPEGs ("data decode-estimate")
DECODE_SIDE, DECODE_OVERHEAD = 160, 1.6
# (share, seconds) kept from a budget beside what is estimated to follow the epochs: a
# plan, made from estimates, keeps more (a fine-tune's head alone has no epochs to cut if it
# runs late); the callback that holds the epochs to the budget (`Budget`) measures them and
# the passes after them as they go. Where it kept a plan's, runs with epochs ended at
# 0.65-0.82 of their --time ("planner time-short", bench/HISTORY.md)
PLANNED, MEASURED = (0.04, 1.0), (0.02, 0.5)


def training_seconds(config: TrainConfig, measured: bool = False) -> float | None:
    """The part of the time budget that training may use (None: no budget): in a plan,
    or (``measured``) as the `Budget` callback holds the epochs to it."""
    if config.time is None:
        return None
    return parse_time(config.time) - _reserved(config.time, MEASURED if measured else PLANNED)


def _reserved(time: str, kept: tuple[float, float] = PLANNED) -> float:
    share, seconds = kept
    return parse_time(time) * share + seconds


def _probe(config: TrainConfig, device: torch.device, resizable: bool):
    """The speed probe, or None where no choice depends on speed (epochs given, no budget,
    the size fixed): then planning costs nothing measurable."""
    if config.epochs is not None and config.time is None and \
            (config.image_size is not None or not resizable):
        return None
    return probe_on(device, config.precision)


def before_loading(config: TrainConfig, started: float) -> Plan | None:
    """The plan for a folder whose image size is not given (None for any other data)."""
    if config.image_size is not None:
        return None
    layout = datasets.folder_layout(config.data)
    if layout is None:
        return None
    device = pick_device(config.device)
    fingerprint = of_layout(layout, detail=not config.fine_tunes)  # a scratch plan's alone
    left = None
    if config.time is not None:  # what decoding every file will take comes off the budget
        left = training_seconds(config) - decoding_seconds(layout, fingerprint) - \
            (time.perf_counter() - started)
    return _plan(fingerprint, config, device, left, True)


def decoding_seconds(layout: Layout, fingerprint: Fingerprint) -> float:
    """What decoding every file of ``layout`` will take here: a few files timed at a
    middle side, over the cores that decode them, with `DECODE_OVERHEAD` for the rest."""
    paths = [Path(entry.path) for entry in layout.entries]
    per_file = seconds_per_file(paths, Preprocess(DECODE_SIDE, DECODE_SIDE,
                                                  fingerprint.channels))
    workers = 1 if len(paths) < SERIAL_BELOW else os.cpu_count() or 1
    return len(paths) * per_file * DECODE_OVERHEAD / workers


def _plan(fingerprint: Fingerprint, config: TrainConfig, device: torch.device,
          left: float | None, resizable: bool, before: Plan | None = None,
          shrinkable: bool = False) -> Plan:
    """From scratch, or fine-tuning trained weights (timed by forward passes too, and
    weighing no option that ``before``, planned with more time, ruled out). ``shrinkable``:
    data in memory, which a plan from scratch may resample smaller (`sized`)."""
    probe = _probe(config, device, resizable)
    if not config.fine_tunes:
        plan = make_plan(fingerprint, config, device.type, probe, left, resizable=resizable,
                         shrinkable=shrinkable)
    else:
        passes = None if probe is None else passes_on(device, config.precision)
        since = None if before is None else \
            (before.config.frozen_layers or 0, before.config.epochs == 0)
        plan = make_finetune_plan(fingerprint, config, device.type, probe, left, resizable,
                                  passes, since)
    plan.spare = 0.0 if config.time is None else _reserved(config.time)
    return plan


def with_data(dataset: Dataset, config: TrainConfig, started: float,
              before: Plan | None = None) -> Plan:
    """The full plan for loaded data; the time left is the budget less what has passed."""
    device = pick_device(config.device)
    budget = training_seconds(config)
    left = None if budget is None else budget - (time.perf_counter() - started)
    fingerprint = of_dataset(dataset)
    if before is not None:  # the folder's own sizes, and the size planned from them
        fingerprint = before.fingerprint
        config = replace(config, image_size=before.config.image_size)
    plan = _plan(fingerprint, config, device, left, resampled(config, dataset, before),
                 before, shrinkable=_held(dataset, before))
    if before is not None:  # the side was chosen there, at the same epochs and freeze
        plan.choices[0] = before.choices[0]
        plan.pressed = plan.pressed or before.pressed
        plan.sized_before = True
    check = mirror_check(dataset.train, len(dataset.classes), config.seed) \
        if config.flip is None else None
    return decide_flips(plan, check)


def resampled(config: TrainConfig, dataset: Dataset, before: Plan | None) -> bool:
    """Whether the plan chooses the side ``dataset`` is resampled to, as it chooses a
    folder's: data in memory, fine-tuned with no ``image_size`` given. Trained weights see
    a photo at their own scale (`convnet.plan.finetune`), so CIFAR-10's 32 px images are
    enlarged to a side of `finetune.SIDES` rather than refused as too small."""
    return config.fine_tunes and config.image_size is None and _held(dataset, before)


def _held(dataset: Dataset, before: Plan | None) -> bool:
    """Whether ``dataset`` is data held in memory, whose size the plan may choose: not a
    folder (decoded at the side planned `before_loading`, or at a given one)."""
    return before is None and dataset.preprocess is None


def sized(dataset: Dataset, config: TrainConfig) -> Dataset:
    """``dataset`` at the side ``config`` was planned at: data in memory that a plan
    resampled (smaller under a budget, `convnet.plan.planner.make_plan`; a fine-tune's
    side, `resampled`); a folder is decoded at its planned side already."""
    if dataset.preprocess is not None:
        return dataset
    return datasets.sized(dataset, config.image_size, config.resize)


def load(config: TrainConfig, before: Plan | None, progress: Progress | None = None,
         channels: int | None = None, notice=None) -> Dataset:
    """``config``'s data; a folder planned `before_loading` to a size is decoded at it with
    the channels its fingerprint read (its headers are not read again).

    ``channels``: what the network needs (trained weights' input); grayscale images are
    then replicated to three channels, and ``notice`` told so.
    """
    side = None if before is None else before.config.image_size
    if side is None:  # not a folder, a size given, or images of one size kept as they are
        dataset = datasets.load(config.data, image_size=config.image_size,
                                resize=config.resize, progress=progress, near=config.dedupe,
                                finders=copies.finders())
        found = dataset.input_shape[2]
    else:
        found = before.fingerprint.channels
        preprocess = Preprocess(side, side, channels or found, config.resize)
        dataset = datasets.load(config.data, preprocess=preprocess, progress=progress,
                                near=config.dedupe,
                                finders=copies.finders())
    if config.dedupe:
        dataset = _deduped(dataset, notice)
    if channels == 3 and found == 1 and notice is not None:
        notice("the images are grayscale: each is replicated to three channels for the "
               "trained colour network")
    return dataset if channels is None else datasets.with_channels(dataset, channels)


def _deduped(dataset: Dataset, notice) -> Dataset:
    """``dataset`` without its evaluation images that copy training ones (``dedupe``)."""
    dataset, dropped = without_copies(dataset)
    if notice is not None:
        said = ", ".join(f"{count:,} {split}" for split, count in dropped.items()
                         if split != "train")
        extra = dropped.get("train")
        kept = f"; kept one of each group of copies in train ({extra:,} dropped)" \
            if extra else ""
        notice(f"dedupe: dropped {said or 'no validation or test'} image(s) that copy "
               f"training images{kept}" if dropped else
               "dedupe: no validation or test image copies a training image"
               if dataset.report is not None else
               "dedupe: this data has no file scan to find copies in; nothing dropped")
    return dataset
