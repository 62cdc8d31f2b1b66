"""Data held in memory through the whole resolution, with fake speed probes: a fine-tune
resamples it to the side its plan chose (where the data's own size is too small for the
trained network), a budget that not one epoch fits resamples it smaller, and what the run
receives is the data at the plan's side."""

from __future__ import annotations

import pytest

from convnet.errors import ConvnetError
from convnet.plan.finetune import SIDES
from convnet.plan.resolve import resolve
from convnet.training import compiler_import
from convnet.training.config import TrainConfig
from machine_helpers import fake_machine

TINY = "x-or-not-x:size=20,train=20,test=6"  # 20 px grayscale, in memory


def test_a_fine_tune_enlarges_data_in_memory_to_its_planned_side(monkeypatch):
    fake_machine(monkeypatch, 0.0001)
    resolved = resolve(TrainConfig(data=TINY, init="imagenet"))
    side = resolved.config.image_size
    assert side in SIDES and side == max(SIDES)  # a fast machine: the largest side
    assert resolved.dataset.input_shape == (side, side, 3)  # grayscale replicated
    assert resolved.plan.fingerprint.uniform == (20, 20)  # planned from the data's own


def test_a_fine_tune_with_every_option_given_but_the_size_is_refused_naming_the_fix():
    config = TrainConfig(data=TINY, init="imagenet", epochs=1, batch_size=8, ema=0.0,
                         flip=False, augment="none")  # nothing left to plan
    with pytest.raises(ConvnetError, match="too small for init='imagenet'.*image_size=96"):
        resolve(config)


def test_a_budget_that_not_one_epoch_fits_resamples_data_in_memory_smaller(monkeypatch):
    fake_machine(monkeypatch, 0.5)  # 64 px: 0.22 s per image, 15 s an epoch of 54 images
    monkeypatch.setattr(compiler_import, "unpaid", lambda: 0.0)
    data = "shapes:size=64,train=10,test=2"
    tight = resolve(TrainConfig(data=data, time="5s"))
    side = tight.config.image_size
    assert side is not None and side < 64
    assert tight.dataset.input_shape == (side, side, 1)
    roomy = resolve(TrainConfig(data=data, time="1m"))  # one epoch fits at 64 px
    assert roomy.config.image_size is None and roomy.dataset.input_shape == (64, 64, 1)
