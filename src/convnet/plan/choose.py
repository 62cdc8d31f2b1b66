"""Scratch or ImageNet? For a photo folder left to the plan (colour, or grayscale: below),
with the ``pretrained`` extra installed, both starts are measured briefly on the same
validation images and the better one is trained. Where the run weighs its classes
(``balance``), both are scored in balanced accuracy, as its epochs are ranked.

- from scratch: the scratch plan's network trained for a fifth of its planned epochs (a
  whole short schedule), its best validation accuracy;
- from ImageNet: the new head fitted alone on the body's features, as the fine-tuning run
  does first anyway (the features are cached, so the chosen run reuses them), its
  validation accuracy.

Both are lower bounds of what the full runs reach; the brief scratch run falls further
short, so a tie goes to fine-tuning, and so does a lead of the scratch run that chance on
so few validation images could give (`lead_needed`: on 6 images, a run from scratch scored
66.7% against the head's 33.3%, then 16.7% when trained in full; on 2, 100% against 0%,
then 52.50% on the test images; bench/HISTORY.md, "Scratch or ImageNet on a few validation
images" and "Folders unlike the tuned ones"). The ImageNet head is measured first,
and the scratch run (a fifth of the budget or more, wasted when fine-tuning wins, as it
did on every photo pair measured in bench/RESULTS.md) only when it could change the
answer: not when the head alone already halves the error of guessing, nor when even a
perfect score from scratch would not lead by enough. Under a ``time`` budget too short for
it (`convnet.plan.networks.too_short`) nothing is measured at all: the scratch run would
take time the chosen run needs, so the answer is fine-tuning whatever the head scores, and
scoring it would only cost time (the features are computed by the run itself). The
ImageNet network is picked first (`convnet.plan.networks`: the largest the budget
affords), so that the head scored is the one the run trains, on features it then reuses.
Without ``time`` or ``epochs``, the network is picked as for a run without a budget, then
the fine-tune gets a whole-command one (`convnet.plan.finetune.default_time`), which its
plan, its head's score and its epochs keep to. Picked within that budget, the network was
the smallest every time (Lite0 with 103 layers frozen on six classes of 246 photos: 64.00%
and 66.67%, where Lite2 had scored 71-74%; bench/RESULTS.md, "finetune no-options").

Grayscale photo folders are weighed too, each image replicated to three channels for the
ImageNet network, with one difference: the head halving guessing's error is no reason to
skip the run from scratch. ImageNet's are colour features, and on grayscale folders either
start can win (`python -m bench finetune unusual`): on 300 grayscale cat/dog photos the
head scored 71.7% against 66.7% for the brief run, and the fine-tune 76.50% on the test
images where scratch had 60.00%; on 600 digits of 96 px the head scored 89.2%, the brief
run 95.8%, and scratch kept its 97.20%. What the images hold decides which start stands
on a tie (`convnet.data.fingerprint.flat_share`): on drawings on a flat background, as
digits and scanned symbols are, the roles swap and scratch trains unless the head leads
by more than chance could give (a head of 94.2% against the brief run's 95.8% had
fine-tuned those digits to 87.90%; bench/HISTORY.md, "Drawings: a tie goes to scratch").
Under a budget too short to measure, that alone decides: drawings train from scratch,
which learns them in seconds, and grayscale photos fine-tune, as colour ones do. On the
folders above at ``--time 10s``, scratch had given the photos 59.50-61.00% where
fine-tuning gives them 71.50%, and the digits 95.70-96.60% (bench/HISTORY.md,
"Grayscale photos under a short budget").

Nothing is measured when any option that decides the start (``arch``, ``init``,
``init='scratch'`` included) is given, for small (under 64 px) or built-in data, under
torchrun, or without the extra.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace

from convnet import data as datasets
from convnet import extras
from convnet.data.fingerprint import FLAT_TONE, Fingerprint, flat_share, of_layout
from convnet.data.layout import Layout
from convnet.plan.finetune import default_time
from convnet.plan.networks import choose_network, too_short
from convnet.plan.planner import trained_images
from convnet.plan.resolve import brief, resolve
from convnet.runs.builtin import IMAGENET
from convnet.runs.predictor import Predictor
from convnet.training.config import TrainConfig
from convnet.training.distributed import world
from convnet.training.pretrained import SOURCES
from convnet.training.setup import pick_device

BRIEF_SHARE = 5  # the brief scratch run trains 1/5 of the planned epochs
# a run from scratch must lead the head by this many standard errors of the difference
# of two accuracies on the same count of images (one-sided, 95%)
LEAD_ERRORS = 1.645
# and by this many images at least: were every image on which the two differ one that
# scratch got right, a lead of k images is chance with probability 0.5^k (a sign test on
# the pairs), under 5% from 5 on; the standard errors alone let 2 images of 2 through
LEAD_IMAGES = 5
PHOTO_SIDE = 64  # median shorter side from which a folder counts as photos
# grayscale images with this median share of flat background or more are drawings
# (`flat_share`): digits 0.66-0.91, photos 0.05-0.49 (0.17 median)
DRAWN_SHARE = 0.5


def applies(config: TrainConfig) -> bool:
    """Whether the plan should weigh fine-tuning for this config's data."""
    if config.init is not None or config.arch != "auto" or world().active:
        return False
    if not extras.installed("pretrained", (SOURCES["efficientnet-lite0"].module,)):
        return False
    layout = datasets.folder_layout(config.data)
    if layout is None:
        return False
    found = of_layout(layout, detail=False)
    return found.channels in (1, 3) and found.shorter_sides[1] >= PHOTO_SIDE


def choose(config: TrainConfig, started: float, notify: Callable[[str], None]) -> TrainConfig:
    """``config`` as it is (scratch) or with ``init='imagenet'`` and the ImageNet network
    (`networks.choose_network`), whichever measured better."""
    began = time.perf_counter()
    tuned_config = replace(config, init=IMAGENET)
    layout = datasets.folder_layout(config.data)  # read once: the channels, then the count
    found = None if layout is None else of_layout(layout, detail=False)
    gray = layout if found is not None and found.channels == 1 else None
    unmeasured = _unmeasured(config, tuned_config, gray, notify)
    if unmeasured is not None:
        return unmeasured
    share = None if gray is None else flat_share(gray)
    drawn = share is not None and share >= DRAWN_SHARE
    # the network first, so that the head scored is the one the run trains, on features
    # it then reuses; what it says waits for the answer (it is moot if scratch wins)
    network_said: list[str] = []
    tuned_config = choose_network(tuned_config, started, network_said.append)
    tuned_config = _with_time(tuned_config, found, network_said.append)
    tuned, chance, scored = head_score(tuned_config, started)
    skip = None if drawn else _no_scratch(tuned, chance, scored, gray is not None)
    if skip:
        notify(f"the plan fine-tunes ImageNet weights: their new head alone scores "
               f"{tuned:.1%} on the validation images; {skip}, so no run from scratch is "
               f"measured ({time.perf_counter() - began:.0f} s; init=scratch trains one)")
        return _said(tuned_config, network_said, notify)
    scratch = _scratch_score(config, started)
    fine_tunes, why = _verdict(tuned, scratch, scored, drawn)
    notify(f"{why}; {time.perf_counter() - began:.0f} s to tell (init="
           f"{'scratch trains from scratch' if fine_tunes else 'imagenet fine-tunes'})")
    return _said(tuned_config, network_said, notify) if fine_tunes else config


def _verdict(tuned: float, scratch: float, images: int, drawn: bool) -> tuple[bool, str]:
    """(whether to fine-tune, why) from the head's and the brief scratch run's validation
    scores on ``images``. Photos fine-tune unless scratch leads by more than chance could
    give (`lead_needed`); ``drawn`` images (drawings on a flat background) train from
    scratch unless the head leads so."""
    head = f"their new head alone scores {tuned:.1%}"
    brief = f"a brief run from scratch (1/{BRIEF_SHARE} of its epochs) scores {scratch:.1%}"
    if drawn:
        needed = lead_needed(tuned, scratch, images)
        if tuned - scratch >= needed:
            return True, (f"the plan fine-tunes ImageNet weights: on these drawings {head} "
                          f"on the validation images against {scratch:.1%} for a brief run "
                          f"from scratch, a lead chance would hardly give ({needed:.0%})")
        return False, (f"the plan trains from scratch: the images are drawings on a flat "
                       f"background, where scratch stands unless ImageNet leads by more "
                       f"than chance could give; {brief} on {images:,} validation images, "
                       f"against {tuned:.1%} for an ImageNet head")
    if tuned >= scratch:
        return True, (f"the plan fine-tunes ImageNet weights: measured on the validation "
                      f"images, {head} against {scratch:.1%} for a brief run from scratch "
                      f"(1/{BRIEF_SHARE} of its epochs)")
    needed = lead_needed(scratch, tuned, images)
    if scratch - tuned < needed:
        return True, (f"the plan fine-tunes ImageNet weights: {brief} against {tuned:.1%} "
                      f"for their new head alone, on {images:,} validation images, a lead "
                      f"chance could give (it needs {needed:.0%} here)")
    return False, (f"the plan trains from scratch: {brief} on the validation images against "
                   f"{tuned:.1%} for an ImageNet head")


def _unmeasured(config: TrainConfig, tuned_config: TrainConfig, gray: Layout | None,
                notify: Callable[[str], None]) -> TrainConfig | None:
    """The start chosen without measuring (``epochs=0``, a short budget), else None
    (``gray``: the folder's layout where its images are grayscale, whose `flat_share` is
    then read only where it decides)."""
    if config.epochs == 0:
        notify("the plan fine-tunes ImageNet weights: epochs=0 asks for a new head alone on "
               "trained features")
        return tuned_config
    if not too_short(config):
        return None
    share = None if gray is None else flat_share(gray)
    if share is not None and share >= DRAWN_SHARE:
        notify(f"the plan trains from scratch: the images are grayscale drawings on a flat "
               f"background ({share:.0%} of a typical image within {FLAT_TONE} grey levels "
               f"of its commonest tone), which a network learns from scratch in seconds, and "
               f"with time={config.time} nothing is measured first (init=imagenet "
               "fine-tunes ImageNet weights)")
        return config
    kind = "" if share is None else (
        f"the images are grayscale photos (only {share:.0%} of a typical image is flat "
        "background), given to the network as three equal channels; ")
    notify(f"the plan fine-tunes ImageNet weights: {kind}with time={config.time} nothing is "
           "measured first (a run from scratch, or a larger network, would take time "
           "the run needs; init=scratch trains one)")
    return tuned_config


def _with_time(config: TrainConfig, found: Fingerprint | None,
               notify: Callable[[str], None]) -> TrainConfig:
    """``config`` with the whole command's default time (`finetune.default_time`), when
    neither ``time`` nor ``epochs`` was given (``found``: its folder's fingerprint)."""
    if config.time is not None or config.epochs is not None or found is None:
        return config
    trained = trained_images(found, config.val_split)
    device = pick_device(config.device).type
    seconds = default_time(device, trained)
    notify(f"the plan gives the fine-tune {seconds:.0f} s in all, as --time would: "
           f"{default_time(device, 1000):.0f} s at 1,000 training images, growing as the "
           f"square root of their count ({trained:,}); --time sets another")
    return replace(config, time=f"{seconds:.0f}s")


def _said(config: TrainConfig, lines: list[str], notify: Callable[[str], None]) -> TrainConfig:
    for line in lines:
        notify(line)
    return config


def _scratch_score(config: TrainConfig, started: float) -> float:
    resolved = resolve(config, started=started)
    planned = resolved.config.epochs
    run = brief(resolved, max(2, round(planned / BRIEF_SHARE))).prepare()
    if run.val_split is None:
        return 0.0
    state = run.loop.run(run.val_split, _scorer(run, resolved.dataset.classes))
    return float(state.score(state.best) or 0.0)


def _no_scratch(tuned: float, chance: float, images: int, gray: bool = False) -> str | None:
    """Why measuring a run from scratch would not pay, or None when it might (on
    ``gray`` images a good head is no such reason: see the module's note)."""
    if tuned >= chance + (1 - chance) / 2 and not gray:
        return f"its error is under half that of guessing one class ({chance:.0%} right)"
    if 1 - tuned < lead_needed(1.0, tuned, images):
        return (f"on {images} validation images not even a run from scratch that scored "
                "every one right would lead by more than chance could give")
    return None


def lead_needed(scratch: float, tuned: float, images: int) -> float:
    """The lead over ``tuned`` that ``scratch`` needs, both accuracies on the same
    ``images``, for chance to be an unlikely cause: `LEAD_ERRORS` standard errors of their
    difference, from the pooled accuracy, and `LEAD_IMAGES` images at least."""
    pooled = (scratch + tuned) / 2
    return max(LEAD_ERRORS * math.sqrt(2 * pooled * (1 - pooled) / max(1, images)),
               LEAD_IMAGES / max(1, images))


def head_score(config: TrainConfig, started: float) -> tuple[float, float, int]:
    """(the new head's validation accuracy, scored on cached features as preparing a
    fine-tune does; guessing's; the validation images). Balanced accuracies where the run
    weighs its classes, as the brief run from scratch is then scored."""
    run = resolve(config, started=started).prepare()
    val = run.val_split
    if val is None or not len(val):
        return 0.0, 1.0, 0
    # guessing one class: its share of the images, or in balanced accuracy 1 / classes
    chance = 1 / len(val.labels.unique()) if run.state.balanced else \
        float(val.labels.bincount().max()) / len(val)
    # no head-only epochs (freeze_epochs=0) leave a head that was never fitted: no score
    phase = run.head_phase or {}
    score = phase.get("val_balanced") if run.state.balanced else phase.get("val_acc")
    return score or 0.0, chance, len(val)


def _scorer(run, classes: list[str]):
    def score(network, split):
        return Predictor(network, run.normalization, classes, False,
                         memory_format=run.batches.memory_format).evaluate(split)
    return score
