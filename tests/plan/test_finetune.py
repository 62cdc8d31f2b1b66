"""The fine-tuning plan: the image side probed from the largest down (under a tight budget,
from the smallest up), and the planned stop (patience) after the best validation score."""

from __future__ import annotations

from dataclasses import replace

import pytest

from convnet.data.fingerprint import Fingerprint
from convnet.plan import cost as costs
from convnet.plan import finetune
from convnet.plan.budget import scored_after
from convnet.plan.finetune import PATIENCE, SIDES, make_finetune_plan
from convnet.plan.planner import trained_images
from convnet.training import compiler_import
from convnet.training.config import TrainConfig

ARCH = "efficientnet-lite0"


def _fingerprint(images: int) -> Fingerprint:
    return Fingerprint(2, images, images // 2, 3, (200, 300, 400), (0.8, 1.25), None)


def _probe(scale: float, asked: list[int]):
    def probe(arch, shape, classes, batch):  # seconds per image, growing with the area
        asked.append(shape[0])
        return scale * 0.009 * (shape[0] / 96) ** 2
    return probe


def _choice(plan, name: str):
    return next(choice for choice in plan.choices if choice.name == name)


def test_a_small_folder_probes_the_largest_side_alone():
    asked: list[int] = []
    config = TrainConfig(data="photos", arch=ARCH, init="imagenet")
    plan = make_finetune_plan(_fingerprint(300), config, "cpu", _probe(0.3, asked),
                              resizable=True)
    assert plan.seconds <= finetune.untimed_limit("cpu", 240)
    assert plan.config.image_size == max(SIDES) and asked == [max(SIDES)]


@pytest.mark.parametrize("budget", [20.0, 30.0, 60.0, 120.0, 240.0, 600.0])
def test_under_a_budget_the_side_is_the_largest_that_fits(budget):
    """The smallest side is probed first; when its time scaled by the side says the largest
    cannot fit, the sides go up from it, else down from the largest. Either way the side
    is the largest whose estimate fits (else the smallest)."""
    asked: list[int] = []
    fp = _fingerprint(1000)
    config = TrainConfig(data="photos", arch=ARCH, init="imagenet", time=f"{budget:g}s",
                         frozen_layers=0)
    plan = make_finetune_plan(fp, config, "cpu", _probe(1, asked), budget=budget,
                              resizable=True)
    # the reference: every side's estimate, the largest that fits (else the smallest)
    trained = trained_images(fp, config.val_split)
    epochs = finetune.finetune_epochs(trained)
    estimates = {side: costs.estimate(fp, config, _probe(1, []), side, 32,
                                      trained).seconds(epochs) for side in SIDES}
    fitting = [side for side in SIDES if estimates[side] <= budget]
    side = plan.config.image_size
    assert side == (max(fitting) if fitting else min(SIDES))
    # a plan that does not fit is made again with the probes' own time off the budget,
    # asking the probe (cached in a run) the same sides again: the first pass is kept
    asked = asked[: len(set(asked))]
    assert asked[0] == min(SIDES)
    if estimates[min(SIDES)] * max(SIDES) / min(SIDES) > budget:  # up from the smallest
        assert asked == sorted(set(asked)) and asked[-1] in (side, _next(side))
    else:  # down from the largest, as without a budget
        assert asked[1:] == sorted(set(asked[1:]), reverse=True) and asked[-1] == side
        assert asked[1] == max(SIDES)


def test_going_up_a_side_that_cannot_fit_even_scaled_by_the_side_is_not_probed():
    """Under a budget between a side's estimate and that estimate scaled by the next side
    (which underestimates it: the probe grows with the area), the next side is not
    probed: its probe would cost time for a side the plan cannot take."""
    fp = _fingerprint(1000)
    config = TrainConfig(data="photos", arch=ARCH, init="imagenet", frozen_layers=0)
    trained = trained_images(fp, config.val_split)
    epochs = finetune.finetune_epochs(trained)
    low, high = SIDES[1], SIDES[2]
    taken = costs.estimate(fp, config, _probe(1, []), low, 32, trained).seconds(epochs)
    scaled = (taken - finetune.FILES_SECONDS) * high / low + finetune.FILES_SECONDS
    budget = (taken + scaled) / 2
    asked: list[int] = []
    timed = TrainConfig(data="photos", arch=ARCH, init="imagenet", frozen_layers=0,
                        time=f"{budget:.3f}s")
    plan = make_finetune_plan(fp, timed, "cpu", _probe(1, asked), budget=budget,
                              resizable=True)
    assert plan.config.image_size == low and high not in asked


def _next(side: int) -> int | None:
    larger = [candidate for candidate in SIDES if candidate > side]
    return larger[0] if larger else None


def _at_the_largest_side():
    """(fingerprint, a 60 s config with every layer training, the planned epochs, the
    estimated cost at the largest side) for 1,000 images."""
    fp = _fingerprint(1000)
    config = TrainConfig(data="photos", arch=ARCH, init="imagenet", time="60s",
                         frozen_layers=0)
    trained = trained_images(fp, config.val_split)
    cost = costs.estimate(fp, config, _probe(1, []), max(SIDES), 32, trained)
    return fp, config, finetune.finetune_epochs(trained), cost


def test_the_estimate_keeps_time_for_the_scoring_after_the_epochs():
    """A budget that holds the features and the epochs at 224 px, but not the test score,
    calibration and "unknown" fit after them, plans a smaller side: planned without that
    tail, the budget's callback would cut an epoch once the first one measured it."""
    fp, config, epochs, cost = _at_the_largest_side()
    assert cost.tail > 0 and cost.seconds(epochs) == pytest.approx(
        cost.features + epochs * cost.epoch + cost.tail)
    budget = cost.features + epochs * cost.epoch + cost.tail / 2
    plan = make_finetune_plan(fp, config, "cpu", _probe(1, []), budget=budget, resizable=True)
    assert plan.config.image_size < max(SIDES) and plan.seconds <= budget
    roomy = make_finetune_plan(fp, config, "cpu", _probe(1, []),
                               budget=cost.seconds(epochs) + 1, resizable=True)
    assert roomy.config.image_size == max(SIDES)


def test_the_probes_own_time_comes_off_a_budget(monkeypatch):
    """The budget is taken before the speed probes run; the seconds they take come off it
    when the plan would not fit without them."""
    fp, config, epochs, cost = _at_the_largest_side()
    budget = cost.seconds(epochs) + 1  # 224 px fits, with a second to spare
    clock = iter([0.0, 5.0])  # the probes took 5 s
    monkeypatch.setattr(finetune.time, "perf_counter", lambda: next(clock, 5.0))
    plan = make_finetune_plan(fp, config, "cpu", _probe(1, []), budget=budget, resizable=True)
    assert plan.config.image_size < max(SIDES) and plan.seconds <= budget - 5


def test_a_fine_tune_of_several_epochs_stops_two_after_its_best():
    config = TrainConfig(data="photos", arch=ARCH, init="imagenet")
    small = make_finetune_plan(_fingerprint(250), config, "cpu", _probe(0.1, []),
                               resizable=True)
    assert small.config.epochs > PATIENCE + 1 and small.config.patience == PATIENCE
    assert "best epoch often comes early" in _choice(small, "patience").reason
    # 3 epochs: a stop after 2 without a better score could never come before the end
    large = make_finetune_plan(_fingerprint(2000), config, "cpu", _probe(0.01, []),
                               resizable=True)
    assert large.config.epochs == 3 and large.config.patience is None
    assert "too few" in _choice(large, "patience").reason
    given = make_finetune_plan(_fingerprint(250), TrainConfig(
        data="photos", arch=ARCH, init="imagenet", patience=99), "cpu", _probe(0.1, []),
        resizable=True)
    assert given.config.patience == 99 and _choice(given, "patience").reason == "given"


def test_the_untimed_budget_grows_with_the_square_root_of_the_training_images():
    from convnet.plan.planner import DEFAULT_BUDGET

    default = DEFAULT_BUDGET["cpu"]
    assert finetune.untimed_limit("cpu", 1000) == pytest.approx(default * finetune.UNTIMED_SHARE)
    assert finetune.untimed_limit("cpu", 800) == pytest.approx(
        2 * finetune.untimed_limit("cpu", 200))
    low, high = finetune.UNTIMED_SHARES
    assert finetune.untimed_limit("cpu", 10) == pytest.approx(default * low)
    assert finetune.untimed_limit("cpu", 100_000) == pytest.approx(default * high)
    # the epochs see 3·sqrt(1000·n) images, so folders of 4× the images keep the side
    config = TrainConfig(data="photos", arch=ARCH, init="imagenet")
    sides = [make_finetune_plan(_fingerprint(n), config, "cpu", _probe(1, []),
                                resizable=True).config.image_size for n in (300, 1250)]
    assert abs(SIDES.index(sides[0]) - SIDES.index(sides[1])) <= 1


def _passes(asked: list[tuple[int, bool]]):
    def passes(arch, shape, classes, fp32):  # a forward pass: bf16 half of fp32
        asked.append((shape[0], fp32))
        return 0.001 * (shape[0] / 96) ** 2 * (1.0 if fp32 else 0.5)
    return passes


def test_the_head_alone_is_timed_by_forward_passes_at_both_precisions():
    """With the pass probe, the head alone costs: the training images once per view at the
    run's precision, the fit (and its refit with the validation images) and the validation
    images per view in fp32 (scored once, for the report, the calibration and the
    detector), then the test images per view in fp32; no training step is probed for it."""
    fp = Fingerprint(2, 1000, 500, 3, (200, 300, 400), (0.8, 1.25), None, test_images=400)
    config = TrainConfig(data="photos", arch=ARCH, init="imagenet", epochs=0)
    trained = trained_images(fp, config.val_split)
    validation = fp.train_images - trained
    steps: list[int] = []
    asked: list[tuple[int, bool]] = []
    cost = costs.estimate(fp, config, _probe(1, steps), 160, 32, trained, alone=True,
                          passes=_passes(asked))
    seen, honest = _passes([])(ARCH, (160, 160, 3), 2, False), \
        _passes([])(ARCH, (160, 160, 3), 2, True)
    # the fit with its folds, then its refit with the validation images (no folds)
    fit = costs.FIT_SECONDS + costs.FIT_PER_IMAGE * 2 * trained + \
        costs.REFIT_PER_IMAGE * 2 * (trained + validation) + \
        compiler_import.unpaid()
    assert cost.features == pytest.approx(seen * 2 * trained + fit + honest * 2 * validation)
    assert cost.tail == pytest.approx(honest * 2 * 400 + finetune.FILES_SECONDS)
    assert cost.seconds(0) == pytest.approx(cost.features + cost.tail)
    assert steps == [] and sorted(asked) == [(160, False), (160, True)]
    # without flips, one view each
    single = costs.estimate(fp, TrainConfig(data="photos", arch=ARCH, init="imagenet",
                                            epochs=0, flip=False),
                            _probe(1, []), 160, 32, trained, alone=True,
                            passes=_passes([]))
    assert single.features < cost.features and single.tail < cost.tail



@pytest.mark.parametrize("imported, deferred", [(False, False), (False, True), (True, False)])
def test_the_compiler_import_is_counted_where_this_process_still_pays_it(monkeypatch,
                                                                         imported, deferred):
    """Torch's compiler is imported (1.2 s here) by the first optimizer made or its first
    step, unless the command deferred it: the head alone and a fine-tune with epochs count
    it where it is neither imported nor deferred."""
    import sys

    fp = Fingerprint(2, 1000, 500, 3, (200, 300, 400), (0.8, 1.25), None, test_images=400)
    trained = trained_images(fp, 0.2)
    monkeypatch.setattr(compiler_import, "_marked", [object()] if deferred else [])
    if imported:
        monkeypatch.setitem(sys.modules, "torch._dynamo", sys.modules.get("torch._dynamo"))
    else:
        monkeypatch.delitem(sys.modules, "torch._dynamo", raising=False)

    def features(epochs: int | None) -> float:
        config = TrainConfig(data="photos", arch=ARCH, init="imagenet", epochs=epochs)
        return costs.estimate(fp, config, _probe(1, []), 160, 32, trained,
                              alone=epochs == 0, passes=_passes([])).features

    alone, epochs = features(0), features(3)
    monkeypatch.setattr(compiler_import, "SECONDS", compiler_import.SECONDS + 5.0)
    assert features(0) - alone == pytest.approx(0.0 if imported or deferred else 5.0)
    assert features(3) - epochs == pytest.approx(0.0 if imported or deferred else 5.0)


def test_epochs_are_timed_by_the_step_and_their_passes_by_the_pass_probe():
    """With the pass probe, a fine-tune with epochs costs: the head's features (one view of
    the training and validation images) and its fit; per epoch, the steps and the
    validation images per view at the run's precision; then the images scored in fp32."""
    fp = Fingerprint(2, 1000, 500, 3, (200, 300, 400), (0.8, 1.25), None, test_images=400)
    config = TrainConfig(data="photos", arch=ARCH, init="imagenet")
    trained = trained_images(fp, config.val_split)
    validation = fp.train_images - trained
    cost = costs.estimate(fp, config, _probe(1, []), 160, 32, trained, 0.5,
                          passes=_passes([]))
    seen, honest = _passes([])(ARCH, (160, 160, 3), 2, False), \
        _passes([])(ARCH, (160, 160, 3), 2, True)
    step = _probe(1, [])(ARCH, (160, 160, 3), 2, 8) * costs.STEP_COST
    fit = costs.FIT_SECONDS + costs.FIT_PER_IMAGE * trained + compiler_import.unpaid()
    assert cost.features == pytest.approx(seen * (trained + validation) + fit)
    assert cost.epoch == pytest.approx(step * trained * 0.5 + seen * 2 * validation)
    scored, embedded = scored_after(validation, 400, trained)
    assert (scored, embedded) == (validation + 400, trained)  # under 2,000 trained
    assert cost.tail == pytest.approx(
        2 * (honest * scored + seen * embedded) + finetune.FILES_SECONDS)
    shared = costs.estimate(fp, config, _probe(1, []), 160, 32, trained, 0.5)
    assert shared.epoch > cost.epoch  # the step's share overcounts a bf16 pass


def test_a_head_alone_plan_under_a_budget_takes_the_largest_side_its_passes_fit():
    fp = Fingerprint(2, 1000, 500, 3, (200, 300, 400), (0.8, 1.25), None, test_images=400)
    config = TrainConfig(data="photos", arch=ARCH, init="imagenet", epochs=0, time="30s")
    trained = trained_images(fp, config.val_split)
    seconds = {side: costs.estimate(fp, config, _probe(1, []), side, 32, trained,
                                    alone=True, passes=_passes([])).seconds(0)
               for side in SIDES}
    budget = (seconds[SIDES[2]] + seconds[SIDES[3]]) / 2
    steps: list[int] = []
    plan = make_finetune_plan(fp, config, "cpu", _probe(1, steps), budget=budget,
                              resizable=True, passes=_passes([]))
    assert plan.config.image_size == SIDES[2] and plan.config.epochs == 0
    assert plan.seconds == pytest.approx(seconds[SIDES[2]]) and steps == []


@pytest.mark.parametrize("over, side", [(1.05, SIDES[2]), (1 + finetune.ALONE_SPREAD + 0.02,
                                                           SIDES[3])])
def test_the_head_alone_under_a_deadline_keeps_a_share_of_its_estimate_spare(over, side):
    """Its passes cannot be cut as they run late: a side whose estimate fits the budget
    with less than `ALONE_SPREAD` to spare is not taken."""
    fp = Fingerprint(2, 1000, 500, 3, (200, 300, 400), (0.8, 1.25), None, test_images=400)
    config = TrainConfig(data="photos", arch=ARCH, init="imagenet", epochs=0, time="30s")
    trained = trained_images(fp, config.val_split)
    seconds = costs.estimate(fp, config, _probe(1, []), SIDES[3], 32, trained,
                             alone=True, passes=_passes([])).seconds(0)
    plan = make_finetune_plan(fp, config, "cpu", _probe(1, []), budget=seconds * over,
                              resizable=True, passes=_passes([]))
    assert plan.config.image_size == side and plan.config.epochs == 0


def test_a_plan_after_one_that_chose_the_head_alone_weighs_no_epochs_again():
    """With the data loaded, the side is the one planned before decoding, and less time is
    left: the options that did not fit then are not weighed (nor their steps probed)."""
    fp = Fingerprint(2, 1000, 500, 3, (200, 300, 400), (0.8, 1.25), None, test_images=400)
    config = TrainConfig(data="photos", arch=ARCH, init="imagenet", time="30s")
    trained = trained_images(fp, config.val_split)
    alone = costs.estimate(fp, config, _probe(1, []), SIDES[2], 32, trained, alone=True,
                           passes=_passes([])).seconds(0)
    first = make_finetune_plan(fp, config, "cpu", _probe(1, []),
                               budget=alone * (1 + finetune.ALONE_SPREAD) + 0.1,
                               resizable=True, passes=_passes([]))
    assert first.config.epochs == 0 and first.config.image_size == SIDES[2]
    steps: list[int] = []
    again = make_finetune_plan(fp, replace(config, image_size=SIDES[2]), "cpu",
                               _probe(1, steps), budget=alone, passes=_passes([]),
                               since=(first.config.frozen_layers, True))
    assert steps == [] and again.config.epochs == 0
    assert again.config.frozen_layers == first.config.frozen_layers
    # without it, every option with epochs is probed at the side first, where a forward
    # pass per training image and epoch would leave them room (`test_no_step_is_probed...`)
    forward = _passes([])(ARCH, (SIDES[2],) * 2 + (3,), 2, False)
    roomy = alone + finetune.finetune_epochs(trained) * trained * forward
    make_finetune_plan(fp, replace(config, image_size=SIDES[2]), "cpu", _probe(1, steps),
                       budget=roomy, passes=_passes([]))
    assert steps and set(steps) == {SIDES[2]}


@pytest.mark.parametrize("room, probed", [(0.9, False), (1.1, True)])
def test_no_step_is_probed_where_a_forward_pass_per_epoch_already_overruns(room, probed):
    """Each option with epochs costs at least the head alone's passes and a forward pass per
    training image in every epoch after the first: beyond the budget, only the head alone
    is weighed, and no training step is probed (a probe and torch's compiler imported by
    its optimizer take seconds)."""
    fp = Fingerprint(2, 1000, 500, 3, (200, 300, 400), (0.8, 1.25), None, test_images=400)
    config = TrainConfig(data="photos", arch=ARCH, init="imagenet", time="30s",
                         image_size=SIDES[2])
    trained = trained_images(fp, config.val_split)
    alone = costs.estimate(fp, config, _probe(1, []), SIDES[2], 32, trained, alone=True,
                           passes=_passes([])).seconds(0)
    forward = _passes([])(ARCH, (SIDES[2],) * 2 + (3,), 2, False)
    bound = alone + (finetune.finetune_epochs(trained) - 1) * trained * forward
    steps: list[int] = []
    plan = make_finetune_plan(fp, config, "cpu", _probe(1, steps), budget=bound * room,
                              passes=_passes([]))
    assert bool(steps) == probed and plan.config.epochs == 0
