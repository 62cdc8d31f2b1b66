"""Which ImageNet network a fine-tune starts from, when the plan chose ImageNet weights and
no ``arch`` was given: EfficientNet-Lite0, or a larger one (Lite1, Lite2) where the budget
affords it and it measures better.

A larger network is weighed only under no ``time`` budget or one of `MEASURE_BUDGET` or
more, and only when its own fine-tuning plan keeps every planned epoch and the default
frozen layers at an image side of `SIDE_FLOOR` or more: a step of Lite2 costs about twice
Lite0's, so its plan often trains smaller images in the same time, and that paid on cat/dog
photos (Lite2 at 192 px 83.25%, Lite1 at 192 px 82.75%, Lite0 at 224 px 78.25%; bench/
RESULTS.md, "finetune networks"), where fewer epochs or more frozen layers cost accuracy
(bench/RESULTS.md, "finetune partial"). Such a network then has its new head fitted on its
features, as the fine-tune does first anyway (the features are cached, so the chosen run
reuses them), and it is chosen when that head scores higher on the validation images by at
least `MARGIN` and one image; otherwise the smaller, faster network keeps the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from convnet import extras
from convnet.plan.freezing import SIDE_FLOOR
from convnet.plan.resolve import resolve
from convnet.training.config import TrainConfig, parse_time
from convnet.training.pretrained import IMAGENET_ARCH, SOURCES

LARGER = ("efficientnet-lite1", "efficientnet-lite2")  # weighed in this order
MARGIN = 0.01  # validation accuracy a larger network must gain to be chosen
# seconds of --time under which nothing more is measured (a run from scratch, a larger
# network): each costs a speed probe or a brief run that a short budget needs for training
MEASURE_BUDGET = 120.0


def head_score(config: TrainConfig, started: float) -> tuple[float, float, int]:
    """(the new head's validation accuracy on ``config``'s network's cached features,
    guessing's (the largest class share), validation images); the head's fit is what
    preparing a fine-tune does first."""
    run = resolve(config, started=started).prepare()  # scores the head (`head_phase`)
    val = run.val_split
    if val is None or not len(val):
        return 0.0, 1.0, 0
    chance = float(val.labels.bincount().max()) / len(val)
    # no head-only epochs (freeze_epochs=0) leave a head that was never fitted: no score
    return (run.head_phase or {}).get("val_acc", 0.0), chance, len(val)


def choose_network(config: TrainConfig, score: float, images: int, started: float,
                   notify: Callable[[str], None]) -> TrainConfig:
    """``config`` (``init='imagenet'``, arch unset: `IMAGENET_ARCH`, whose head scored
    ``score`` on ``images`` validation images) with the network chosen among `LARGER`."""
    if config.time is not None and parse_time(config.time) < MEASURE_BUDGET:
        return config
    began = time.perf_counter()
    best, best_score, measured = config, score, [f"{_short(IMAGENET_ARCH)} {score:.1%}"]
    skipped = []
    for arch in LARGER:
        if not extras.installed("pretrained", (SOURCES[arch].module,)):
            continue
        candidate = replace(config, arch=arch)
        plan = resolve(candidate, started=started).plan
        side = None if plan is None else plan.config.image_size
        if plan is None or plan.pressed or side is not None and side < SIDE_FLOOR:
            skipped.append(_short(arch))
            continue
        tried, _, _ = head_score(candidate, started)
        measured.append(f"{_short(arch)} {tried:.1%}")
        if tried >= best_score + max(MARGIN, 1 / max(1, images)):
            best, best_score = candidate, tried
    if len(measured) > 1 or skipped:
        notify(_told(best, measured, skipped, time.perf_counter() - began))
    return best


def _told(chosen: TrainConfig, measured: list[str], skipped: list[str], seconds: float
          ) -> str:
    """The notice of the choice: what was measured, what the budget left out."""
    name = _short(chosen.arch if chosen.arch != "auto" else IMAGENET_ARCH)
    parts = [f"the plan starts from EfficientNet-{name}"]
    if len(measured) > 1:
        parts.append(f"new heads on the validation images: {', '.join(measured)} "
                     f"(a larger network must gain {MARGIN:.0%}; {seconds:.0f} s to tell)")
    if skipped:
        parts.append(f"{' and '.join(skipped)} would fit the budget only with fewer "
                     f"epochs, more frozen layers or images under {SIDE_FLOOR} px "
                     "(arch=efficientnet-lite2 trains one anyway)")
    return "; ".join(parts)


def _short(arch: str) -> str:
    return arch.removeprefix("efficientnet-").capitalize()
