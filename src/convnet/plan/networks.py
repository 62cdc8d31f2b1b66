"""Which ImageNet network a fine-tune starts from, when the plan chose ImageNet weights and
no ``arch`` was given: the largest of EfficientNet-Lite2, -Lite1 and -Lite0 whose own
fine-tuning plan keeps every planned epoch and the default frozen layers at an image side
of `SIDE_FLOOR` or more, within the budget (`convnet.plan.choose` weighs none under a
given ``time`` below `MEASURE_BUDGET`: their plans' speed probes would cost the run's time).

Why the largest that fits, and not the best new head: on three photo folders
(bench/RESULTS.md, "finetune networks", each network's run beside the plan's), the largest
network that fit was the most accurate or within noise of it: Lite2 72.67% against Lite0's
69.67% (6 classes, both 224 px), 83.25% at 192 px against 78.25% at 224 px (cat/dog), and
92.50% at 192 px against 93.00% (4 classes, 400 test images). A larger network's plan often
trains smaller images in the same time, and that paid; fewer epochs or more frozen layers
cost accuracy (bench/RESULTS.md, "finetune partial"). The heads fitted alone on each
network's features did not tell this: on cat/dog, Lite1's and Lite2's heads did not beat
Lite0's, and measuring them cost 93 s of a 284 s run.
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

LARGER = ("efficientnet-lite1", "efficientnet-lite2")  # the largest is weighed first
# seconds of --time under which nothing more is measured (a run from scratch, a larger
# network): each costs a speed probe or a brief run that a short budget needs for training
MEASURE_BUDGET = 120.0


def too_short(config: TrainConfig) -> bool:
    """Whether ``config``'s time budget is under `MEASURE_BUDGET`."""
    return config.time is not None and parse_time(config.time) < MEASURE_BUDGET


def choose_network(config: TrainConfig, started: float,
                   notify: Callable[[str], None]) -> TrainConfig:
    """``config`` (``init='imagenet'``, arch unset: `IMAGENET_ARCH`) with the largest
    network of `LARGER` whose plan fits as the module says, or as it is. The caller
    (`convnet.plan.choose`) asks only when a given ``time`` is not `too_short`."""
    began, skipped = time.perf_counter(), []
    for arch in reversed(LARGER):
        if not extras.installed("pretrained", (SOURCES[arch].module,)):
            continue
        candidate = replace(config, arch=arch)
        plan = resolve(candidate, started=started).plan
        side = None if plan is None else plan.config.image_size
        if plan is None or plan.pressed or side is not None and side < SIDE_FLOOR:
            skipped.append(_short(arch))
            continue
        size = f"{side} px" if side else "the images' own size"
        notify(f"the plan starts from EfficientNet-{_short(arch)}, the largest ImageNet "
               f"network whose plan keeps its epochs and frozen layers at {SIDE_FLOOR} px "
               f"or more ({size}; "
               f"{_not_fitting(skipped)}{time.perf_counter() - began:.0f} s to plan; "
               f"arch=efficientnet-lite0 trains the smallest)")
        return candidate
    if skipped:
        notify(f"the plan starts from EfficientNet-{_short(IMAGENET_ARCH)}: "
               f"{_not_fitting(skipped)}arch=efficientnet-lite2 trains one anyway")
    return config


def _not_fitting(skipped: list[str]) -> str:
    if not skipped:
        return ""
    return (f"{' and '.join(skipped)} would fit the budget only with fewer epochs, more "
            f"frozen layers or images under {SIDE_FLOOR} px; ")


def _short(arch: str) -> str:
    return arch.removeprefix("efficientnet-").capitalize()
