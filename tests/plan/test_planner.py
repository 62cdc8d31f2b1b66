"""The planner's rules, with a fake speed probe: what it plans for small and large data,
that a given option is kept, that epochs fit a budget, and that the network it draws fits
every image size from 1 px to 300 px."""

from __future__ import annotations

import math
import time
from dataclasses import replace

import pytest
import torch

import convnet
from convnet.data.dataset import validation_share
from convnet.data.fingerprint import Fingerprint
from convnet.errors import ConvnetError
from convnet.network import build
from convnet.network.design import design, stages_for
from convnet.plan import planner
from convnet.plan.budget import FILES_SECONDS
from convnet.plan.freezing import FORWARD_SHARE
from convnet.plan.planner import decide_flips, make_plan, target_epochs
from convnet.training import compiler_import
from convnet.training.config import TrainConfig, parse_time


def _fingerprint(images: int, classes: int = 2, side: int = 200, channels: int = 3,
                 uniform: bool = False, detail: int | None = None) -> Fingerprint:
    return Fingerprint(classes, images, images // classes, channels, (side // 2, side, side * 2),
                       (0.6, 1.6), (side, side) if uniform else None, False, detail)


def _probe(per_pixel: float):
    """A machine on which a step costs ``per_pixel`` seconds per input pixel and image."""
    calls = []

    def probe(arch, shape, classes, batch):
        calls.append(shape)
        return per_pixel * shape[0] * shape[1]
    probe.calls = calls
    return probe


def _choices(plan) -> dict:
    return {choice.name: choice for choice in plan.choices}


def test_few_images_get_more_epochs_smaller_batches_and_strong_augmentation():
    few = make_plan(_fingerprint(200), TrainConfig(data="x"), "cpu", _probe(1e-9), None, True)
    many = make_plan(_fingerprint(20_000), TrainConfig(data="x"), "cpu", _probe(1e-9), None,
                     True)
    assert few.config.epochs > many.config.epochs >= 10
    assert few.config.batch_size < many.config.batch_size <= 128
    assert few.config.augment == "strong" and many.config.augment == "light"
    assert target_epochs(7200) == 14  # digits keeps its measured count


def test_given_options_are_kept_and_marked():
    config = TrainConfig(data="x", epochs=3, batch_size=64, augment="none", ema=0.0, lr=0.1,
                         image_size=40, arch="conv8k3-relu-gap-fc")
    plan = make_plan(_fingerprint(1000), config, "cpu", None, None, True)
    assert (plan.config.epochs, plan.config.batch_size, plan.config.augment, plan.config.ema,
            plan.config.lr, plan.config.image_size) == (3, 64, "none", 0.0, 0.1, 40)
    assert all(_choices(plan)[name].given for name in
               ("epochs", "batch_size", "augment", "ema", "lr", "image_size", "arch"))


def test_the_size_follows_the_images_detail_and_the_device_cap():
    upscaled = make_plan(_fingerprint(1000, detail=32), TrainConfig(data="x"), "cpu",
                         _probe(1e-9), None, True)
    photos = make_plan(_fingerprint(1000), TrainConfig(data="x"), "cpu", _probe(1e-9), None,
                       True)
    assert upscaled.config.image_size == 32 and "detail" in _choices(upscaled)["image_size"].reason
    assert photos.config.image_size == 64  # the CPU cap without --time
    budgeted = make_plan(_fingerprint(1000), TrainConfig(data="x", time="10m"), "cpu",
                         _probe(1e-9), 600, True)
    assert budgeted.config.image_size == 128  # a budget raises the cap


def test_a_budget_may_train_at_up_to_twice_the_detail_and_uniform_sizes_yield_to_it():
    room = make_plan(_fingerprint(1000, detail=24), TrainConfig(data="x", time="10m"), "cpu",
                     _probe(1e-9), 600, True)
    assert room.config.image_size == 48 and "twice" in _choices(room)["image_size"].reason
    tight = make_plan(_fingerprint(1000, detail=24), TrainConfig(data="x", time="5s"), "cpu",
                      _probe(1e-6), 5.0, True)
    assert tight.config.image_size < 48  # twice the detail does not fit 5 s
    # 96-px images of one size that hold 24 px of detail are shrunk, not kept at 96
    upscaled = _fingerprint(1000, side=96, uniform=True, detail=24)
    for config, side in ((TrainConfig(data="x"), 24), (TrainConfig(data="x", time="10m"), 48)):
        plan = make_plan(upscaled, config, "cpu", _probe(1e-9), 600 if config.time else None,
                         True)
        assert plan.config.image_size == side
    sharp = make_plan(_fingerprint(1000, side=96, uniform=True), TrainConfig(data="x",
                      time="10m"), "cpu", _probe(1e-9), 600, True)
    assert sharp.config.image_size is None  # kept at its own 96 px
    squeezed = make_plan(_fingerprint(1000, side=64, uniform=True), TrainConfig(data="x",
                         time="5s"), "cpu", _probe(1e-6), 5.0, True)
    assert squeezed.config.image_size is not None and squeezed.config.image_size < 64
    assert "own size would not fit" in _choices(squeezed)["image_size"].reason


def test_data_in_memory_shrinks_only_under_a_budget_that_not_one_epoch_fits(monkeypatch):
    monkeypatch.setattr(compiler_import, "unpaid", lambda: 0.0)
    # 1,000 images of 64 px in memory; 1e-7 s per pixel: an epoch at 64 px takes ~0.5 s
    held = _fingerprint(1000, side=64, uniform=True)
    probe = _probe(1e-7)
    untimed = make_plan(held, TrainConfig(data="x"), "cpu", probe, None, shrinkable=True)
    assert untimed.config.image_size is None and probe.calls == [(64, 64, 3)]
    roomy = make_plan(held, TrainConfig(data="x", time="1m"), "cpu", _probe(1e-7), 2.0,
                      shrinkable=True)
    # one epoch fits at its own size, though not the 14 planned: kept, epochs cut
    assert roomy.config.image_size is None and roomy.config.epochs < target_epochs(900)
    tight = make_plan(held, TrainConfig(data="x", time="1m"), "cpu", _probe(2e-6), 1.0,
                      shrinkable=True)
    kept = make_plan(held, TrainConfig(data="x", time="1m"), "cpu", _probe(2e-6), 1.0)
    assert kept.config.image_size is None  # not shrinkable: the data's own size, overrun
    assert tight.config.image_size is not None and tight.config.image_size < 64
    assert "resampled from their own 64 px" in _choices(tight)["image_size"].reason
    assert tight.seconds < kept.seconds


def test_under_a_budget_the_probes_after_the_first_come_off_it(monkeypatch):
    # each probe takes 0.3 s of a 3 s budget: the epochs fit what is left after them
    def slow(arch, shape, classes, batch):
        time.sleep(0.3)
        return 1e-7 * shape[0] * shape[1]
    held = _fingerprint(1000, side=64, uniform=True)
    monkeypatch.setattr(compiler_import, "unpaid", lambda: 0.0)
    sides = make_plan(held, TrainConfig(data="x", time="1m"), "cpu", slow, 3.0, True)
    one = make_plan(held, TrainConfig(data="x", time="1m", image_size=16), "cpu", slow, 3.0,
                    True)
    assert sides.config.image_size == one.config.image_size == 16  # found after 5 probes
    assert sides.config.epochs < one.config.epochs


def test_a_slow_machine_gets_a_smaller_size_then_fewer_epochs():
    # 1e-6 s per pixel: an epoch of 900 images at 64 px takes ~4.6 s, at 16 px ~0.3 s
    config = TrainConfig(data="x", time="20s")
    plan = make_plan(_fingerprint(1000), config, "cpu", _probe(1e-6), 20.0, True)
    assert plan.config.image_size < 64
    assert plan.seconds <= 20.0
    # with no size left to drop, the epochs are cut to fit
    tight = make_plan(_fingerprint(1000), TrainConfig(data="x", time="6s"), "cpu",
                      _probe(1e-5), 6.0, True)
    assert tight.config.image_size == 16 and tight.seconds <= 6.0
    assert "cut from" in _choices(tight)["epochs"].reason


def test_under_a_budget_the_epochs_leave_room_for_the_work_after_them():
    """The images scored as the run ends (per view, a forward pass's share of a step) and
    the files come off what the epochs may take: planned to fill the budget, the epochs
    were cut after the first by the callback, before their schedule had annealed."""
    fp = replace(_fingerprint(1000, side=32, uniform=True), test_images=500)
    step = 1e-6 * 32 * 32 * planner.OVERHEAD  # a step's seconds per image
    trained = planner.trained_images(fp, None)
    validation = 1000 - trained  # held out of the training images
    epoch = step * (trained + validation / 3)
    for flip, views in ((None, 2), (False, 1)):
        config = TrainConfig(data="x", time="20s", flip=flip, image_size=32)
        plan = make_plan(fp, config, "cpu", _probe(1e-6), 20.0, True)
        # validation and test scored, and the detector's training images, per view
        tail = step * FORWARD_SHARE * views * (validation + 500 + trained) + FILES_SECONDS
        limit = 20.0 - compiler_import.unpaid()  # the compiler's import, where unpaid
        assert plan.config.epochs == int((limit - tail) // epoch) < int(limit // epoch)
        assert plan.seconds == pytest.approx(plan.config.epochs * epoch + tail)
    untimed = make_plan(fp, TrainConfig(data="x", image_size=32), "cpu", _probe(1e-6), None,
                        True)
    assert untimed.seconds == pytest.approx(untimed.config.epochs * epoch)  # as before


def test_a_budget_with_room_to_spare_trains_longer():
    plain = make_plan(_fingerprint(1000), TrainConfig(data="x"), "cpu", _probe(1e-9), None,
                      True)
    long = make_plan(_fingerprint(1000), TrainConfig(data="x", time="1h"), "cpu",
                     _probe(1e-9), 3600.0, True)
    assert long.config.epochs == 2 * plain.config.epochs  # at most twice the data's count


def test_weights_are_averaged_over_about_one_epoch():
    for images, batch in ((200, 16), (7200, 128)):
        plan = make_plan(_fingerprint(images, uniform=True, side=28), TrainConfig(data="x"),
                         "cpu", None, None)
        trained = round(images * (1 - validation_share(None, images)))
        steps = math.ceil(trained / plan.config.batch_size)
        assert plan.config.batch_size == batch
        assert 1 / (1 - plan.config.ema) == pytest.approx(steps, rel=0.01)


def test_flips_follow_the_check_unless_given_or_augmentation_is_off():
    class Check:
        flips_ok = False

        def reason(self):
            return "mirrored digits are other digits"

    plan = make_plan(_fingerprint(500), TrainConfig(data="x"), "cpu", None, None)
    assert decide_flips(plan, Check()).config.flip is False
    given = make_plan(_fingerprint(500), TrainConfig(data="x", flip=True), "cpu", None, None)
    assert decide_flips(given, Check()).config.flip is True
    off = make_plan(_fingerprint(500), TrainConfig(data="x", augment="none"), "cpu", None, None)
    assert decide_flips(off, None).config.flip is False


@pytest.mark.parametrize("side", [1, 2, 5, 7, 8, 12, 28, 33, 64, 100, 300])
@pytest.mark.parametrize("channels", [1, 3])
def test_the_drawn_network_fits_every_size(side, channels):
    network = build(design((side, side, channels)), (side, side, channels), 4)
    x = torch.zeros(2, channels, side, side)  # (B, C, H, W)
    assert network(x).shape == (2, 4)


def test_depth_grows_with_the_size():
    assert [stages_for(side) for side in (5, 8, 16, 32, 64, 128, 300)] == [0, 1, 2, 3, 4, 5, 5]
    assert design((28, 28, 1)) == "default"  # digit-like: the measured preset


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("5m", 300), ("1h30m", 5400),
                                           ("45", 45), ("1.5m", 90)])
def test_time_budgets_parse(text, seconds):
    assert parse_time(text) == seconds


@pytest.mark.parametrize("text, message", [("soon", "a duration like 90s"),
                                           ("2s", "under 5 seconds")])
def test_bad_time_budgets_are_refused(text, message):
    with pytest.raises(ConvnetError, match=message):
        TrainConfig(data="x", time=text)


def test_a_finetuning_plan_takes_the_largest_side_that_fits_the_budget():
    from convnet.plan.finetune import SIDES, make_finetune_plan

    fp = _fingerprint(1000)
    config = TrainConfig(data="photos", arch="efficientnet-lite0", init="imagenet")

    def probe(arch, shape, classes, batch):  # seconds per image, growing with the area
        return 0.003 * (shape[0] / 96) ** 2

    plan = make_finetune_plan(fp, config, "cpu", probe, resizable=True)
    # the features, 3 epochs of 800 images and the scoring: 224 px ~34 s, within the ~80 s
    # it aims at untimed at 800 training images
    assert plan.config.image_size == 224 and plan.config.epochs == 3
    assert plan.config.lr == pytest.approx(5e-4) and plan.config.batch_size == 32
    slow = make_finetune_plan(fp, config, "cpu", lambda *a: 4 * probe(*a), resizable=True)
    assert slow.config.image_size == 160  # ~69 s, where 192 px would take ~99 s
    slowest = make_finetune_plan(fp, config, "cpu", lambda *a: 50 * probe(*a),
                                 resizable=True)
    assert slowest.config.image_size == SIDES[0] and slowest.config.epochs < 3


def test_the_headline_says_when_even_the_least_plan_overruns_what_the_budget_leaves():
    """A short --time on a folder slow to decode leaves less than the least plan needs;
    the plan says so instead of promising the budget."""
    from convnet.plan.planner import OVERRUN_SECONDS, Plan

    fp, config = _fingerprint(600), TrainConfig(data="photos", time="10s")
    within = Plan(fp, config, seconds=4.0, budget=4.0 + OVERRUN_SECONDS)
    assert not within.overruns and "budget" not in within.headline()
    over = Plan(fp, config, seconds=4.0, budget=-1.4)
    assert over.overruns
    assert "more than the time budget leaves after start-up and the data (nothing)" in \
        over.headline()
    assert "(2 s)" in Plan(fp, config, seconds=4.0, budget=2.0).headline()
    # once decoded at a side chosen before, the least at that side: a smaller one might
    # have fitted had decoding taken what was estimated
    assert "the least this plan can do at the image side chosen before decoding, so" in \
        replace(over, sized_before=True).headline()
    assert not Plan(fp, config, seconds=400.0).overruns  # no budget: nothing to overrun
    # what the budget keeps for the test score and saving counts as left
    spared = Plan(fp, config, seconds=4.0, budget=2.0, spare=1.4)
    assert not spared.overruns
    assert "(3 s)" in replace(spared, seconds=5.0).headline()


def test_a_budgeted_plan_knows_what_its_budget_keeps_from_training(tmp_path):
    """`training_seconds` and the plan's `spare` add up to the whole --time."""
    from convnet.plan import loading

    config = TrainConfig(data="digits", time="50s", epochs=1)
    plan = loading.with_data(convnet.datasets.load("digits"), config, started=time.perf_counter())
    assert plan.spare + loading.training_seconds(config) == pytest.approx(50.0)
    # the callback, which measures the epochs and the passes after them, keeps less
    assert loading.training_seconds(config, measured=True) == pytest.approx(
        50.0 - 50.0 * loading.MEASURED[0] - loading.MEASURED[1])
    assert loading.training_seconds(config, measured=True) > loading.training_seconds(config)
    untimed = loading.with_data(convnet.datasets.load("digits"),
                                TrainConfig(data="digits", epochs=1), started=0.0)
    assert untimed.spare == 0.0 and untimed.budget is None


def test_the_plan_after_decoding_says_its_side_came_from_the_plan_before(tmp_path):
    """A folder is planned twice: its side before decoding, the rest after; only the
    second knows that the side is no longer its own to shrink."""
    from convnet.plan import loading
    from resume_helpers import rgb_folder

    data = str(rgb_folder(tmp_path / "folder", sizes=(40, 60)))
    config = TrainConfig(data=data, epochs=1)
    before = loading.before_loading(config, time.perf_counter())
    assert before is not None and not before.sized_before
    dataset = convnet.datasets.load(data, image_size=before.config.image_size)
    after = loading.with_data(dataset, config, time.perf_counter(), before)
    assert after.sized_before and after.config.image_size == before.config.image_size
    assert not loading.with_data(dataset, config, time.perf_counter()).sized_before
