"""What a fine-tune costs here, in seconds, by part: the features computed once (and the
head fitted on them), each epoch, and the scoring and files after the last one. The plan
(`convnet.plan.finetune`) weighs its options by this; `python -m bench finetune estimate`
checks it against real runs.

A training step is timed by the step probe at a small batch (`PROBE_BATCH`), and scaled
to the run's batch (`STEP_COST`); a forward pass without autograd is timed by the pass
probe where the plan has one, else counted as a share of a step (`PASS_SHARE`).
"""

from __future__ import annotations

from dataclasses import dataclass

from convnet.data.fingerprint import Fingerprint
from convnet.plan.budget import after_seconds, scored_after
from convnet.plan.planner import PassProbe, Probe
from convnet.training import compiler_import
from convnet.training.config import TrainConfig

PROBE_BATCH = 8
# a fine-tune step's cost per image, in the probe's seconds per image: the run's batch of
# 32 is faster per image than the probe's `PROBE_BATCH`, and its batching, light
# augmentation and weight averaging add little (bench/RESULTS.md, "finetune estimate")
STEP_COST = 0.72
# a pass without autograd (the features computed once, the validation and test images)
# costs this share of a step (same source)
PASS_SHARE = 0.19
# the head alone's logistic regression (`convnet.training.linear_head`): seconds, and per
# view of each training image (0.4-0.5 ms each here for 500-16,000 of them, 2-10 classes,
# 1,280 features; bench/HISTORY.md, "The head alone's estimate")
FIT_SECONDS, FIT_PER_IMAGE = 0.4, 4e-4
# its refit on the training and validation images at the chosen strength (one fit, no
# folds: 0.18 s for 2 views of 1,000 images, 0.85 s for 2 of 4,000 here)
REFIT_PER_IMAGE = 1e-4


def shape_of(fp: Fingerprint, side: int | None) -> tuple[int, int, int]:
    """(H, W, 3) of a fine-tune's images at ``side``; the data's own size where None."""
    height, width = (side, side) if side else (fp.uniform or (fp.shorter_sides[1],) * 2)
    return height, width, 3


@dataclass(frozen=True)
class Cost:
    """A fine-tune's estimated seconds, by part (`estimate`)."""

    features: float  # computed once, for the training and validation images
    epoch: float  # one epoch: training, then the validation images scored
    tail: float  # the forward passes as the run ends (`_tail`), and the files written

    def seconds(self, epochs: int) -> float:
        return self.features + epochs * self.epoch + self.tail


def estimate(fp: Fingerprint, config: TrainConfig, probe: Probe | None, side: int | None,
             batch: int, trained: int, factor: float = 1.0, alone: bool = False,
             passes: PassProbe | None = None) -> Cost | None:
    """What a fine-tune at ``side`` costs, a training step costing ``factor`` of a full
    one; None without a probe. Its forward passes are timed by ``passes`` where given
    (`_epochs`, `_alone`), else counted as a share of the step. ``alone``: the head alone,
    whose training images pass once per flip, for the head and the "unknown" detector
    both.

    The tail counts here, and not only in the budget's callback: planned without it, a
    budget's epochs are cut once the first one tells the callback what the tail costs."""
    if probe is None:
        return None
    counts = _Counts(trained, 0 if fp.has_val else fp.train_images - trained,
                     fp.test_images, 1 if config.flip is False else 2)
    if alone and passes is not None:  # no training step: none is probed
        return _alone(counts, *_pass_seconds(fp, config, passes, side))
    # a small probe batch: a few steps of EfficientNet at 192 px take seconds each here
    step = probe(config.arch, shape_of(fp, side), fp.classes, min(batch, PROBE_BATCH)) \
        * STEP_COST
    if passes is not None:
        return _epochs(counts, step * factor, *_pass_seconds(fp, config, passes, side))
    validation, views = counts.validation, counts.views
    return Cost(step * PASS_SHARE * ((views if alone else 1) * trained + validation),
                step * (trained * factor + validation * PASS_SHARE),
                after_seconds(scored_after(validation, fp.test_images, 0 if alone else trained),
                              step * PASS_SHARE * views))


@dataclass(frozen=True)
class _Counts:
    """The images a fine-tune passes, and the views of each it scores."""

    trained: int
    validation: int
    test: int
    views: int


def _pass_seconds(fp: Fingerprint, config: TrainConfig, passes: PassProbe, side: int | None
            ) -> tuple[float, float]:
    """Seconds per image of a forward pass at ``side``: at the run's precision, in fp32."""
    shape = shape_of(fp, side)
    return passes(config.arch, shape, fp.classes, False), \
        passes(config.arch, shape, fp.classes, True)


def _epochs(counts: _Counts, step: float, seen: float, honest: float) -> Cost:
    """A fine-tune with epochs (``step``: a training step's seconds per image), its passes
    timed: the head's features (one view of the training and validation images, at the
    run's precision, ``seen``) and its fit; each epoch's steps and its validation images
    per view at the run's precision (they only rank the epochs); then the images scored as
    the run ends, per view in fp32 (``honest``), and the detector's training images at the
    run's precision. A share of the step put the features at
    2-2.5 times their time (bench/RESULTS.md, "finetune estimate")."""
    trained, validation, views = counts.trained, counts.validation, counts.views
    # the head's fit, and the compiler's import where the process has yet to pay it
    fit = FIT_SECONDS + FIT_PER_IMAGE * trained + compiler_import.unpaid()
    return Cost(seen * (trained + validation) + fit,
                step * trained + seen * views * validation,
                after_seconds(scored_after(validation, counts.test, trained), honest * views,
                              seen * views))


def _alone(counts: _Counts, seen: float, honest: float) -> Cost:
    """The head alone, by measured forward passes: each training image once per view at
    the run's precision (``seen``: the head's features, and the detector's), the head's
    fit (and its refit with the validation images) and the validation images once per view
    in fp32 (``honest``;
    `convnet.training.setup`: the calibration and the detector reuse those scores); then
    the test images, per view in fp32 as the run ends (what it records and answers
    with)."""
    trained, views = counts.trained, counts.views
    fit = FIT_SECONDS + FIT_PER_IMAGE * views * trained + \
        REFIT_PER_IMAGE * views * (trained + counts.validation) + \
        compiler_import.unpaid()
    return Cost(seen * views * trained + fit + honest * views * counts.validation, 0.0,
                after_seconds(scored_after(0, counts.test, 0), honest * views))
