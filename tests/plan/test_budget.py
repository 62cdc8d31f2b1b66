"""A time budget fits the epochs to the measured epoch time: cut whenever they run long,
raised (up to a bound) only in the first two epochs, and the learning-rate schedule is
re-planned over the new total so it still anneals to the end."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from convnet.plan import budget as budget_module
from convnet.plan.budget import Budget
from convnet.training.callbacks import Callback, EpochStats
from convnet.training.config import TrainConfig
from convnet.training.loop import refit_epochs

STEPS = 5  # per epoch


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(budget_module.time, "perf_counter", fake)
    return fake


class Listener(Callback):
    """What the progress display hears: notes and the changed epoch counts."""

    def __init__(self):
        self.notes: list[str] = []
        self.totals: list[int] = []

    def on_notice(self, line: str) -> None:
        self.notes.append(line)

    def on_epochs(self, total: int) -> None:
        self.totals.append(total)


def _loop(epochs: int):
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([weight], lr=0.01)
    state = SimpleNamespace(optimizer=optimizer, step=0, scheduler=None)
    return SimpleNamespace(epochs=epochs, batches=SimpleNamespace(steps=STEPS, batch_size=10),
                           state=state)


def _epoch(budget: Budget, loop, clock: Clock, number: int, seconds: float,
           rate: float = 0.0) -> None:
    budget.on_epoch_start(number)
    clock.now += seconds
    loop.state.step += STEPS
    stats = EpochStats(number, 0.0, 0.0, None, None, 0.0, seconds, rate)
    loop.epochs = refit_epochs(loop.epochs, stats, [budget, *budget.listeners])  # as Loop asks


def test_epochs_that_run_long_are_cut_and_the_schedule_anneals_over_the_rest(clock):
    loop, listener = _loop(10), Listener()
    budget = Budget(loop, TrainConfig(data="x", epochs=10, lr=0.01), 11.0, 10, [listener])
    _epoch(budget, loop, clock, 1, 2.0)  # 9 s left: 4 more epochs of 2 s
    assert loop.epochs == 5 and "cut from 10 to 5" in listener.notes[0]
    assert listener.totals == [5]  # the live display counts to the new total
    schedule = loop.state.scheduler
    assert schedule.total_steps == 5 * STEPS and schedule.last_epoch == STEPS
    for _ in range(4 * STEPS - 1):
        schedule.step()
    assert schedule.get_last_lr()[0] < 1e-5  # annealed by the new last step


def test_spare_time_raises_the_epochs_only_early_and_only_to_the_bound(clock):
    loop = _loop(10)
    budget = Budget(loop, TrainConfig(data="x", lr=0.01), 100.0, 20)
    _epoch(budget, loop, clock, 1, 1.0)
    assert loop.epochs == 20  # the bound, not the 99 that would fit
    late = _loop(10)
    budget = Budget(late, TrainConfig(data="x", lr=0.01), 1000.0, 20)
    for number in range(1, 4):
        late.epochs = 10  # as if the first epochs had kept it
        budget.durations = []
        _epoch(budget, late, clock, number, 1.0)
    assert late.epochs == 10  # from epoch 3 on, never raised


def test_a_slow_first_epoch_does_not_hold_back_the_second_epochs_estimate(clock):
    loop, listener = _loop(10), Listener()
    budget = Budget(loop, TrainConfig(data="x", lr=0.01), 40.0, 30, [listener])
    _epoch(budget, loop, clock, 1, 8.0)  # warm-up: 32 s left at 8 s an epoch
    assert loop.epochs == 5
    _epoch(budget, loop, clock, 2, 2.0)  # the real pace: 30 s left at 2 s an epoch,
    assert loop.epochs == 16  # raised to 15 more less half an epoch spare (not 17)
    # each change is said, the raise too: a later cut then reads from what was raised
    assert "cut from 10 to 5" in listener.notes[0] and "raised from 5 to 16" in listener.notes[1]
    _epoch(budget, loop, clock, 3, 2.0)  # later, the slower of the last two epochs
    assert loop.epochs == 16


def test_small_cuts_after_each_short_epoch_are_said_only_once_they_add_up(clock):
    """Epochs of hundredths of a second drift: each cut by one is made, and the schedule
    re-planned, but a note comes only once the total has moved a quarter from the last."""
    loop, listener = _loop(100), Listener()
    budget = Budget(loop, TrainConfig(data="x", lr=0.01), 3.0, 100, [listener])
    _epoch(budget, loop, clock, 1, 0.03)  # 2.97 s left: all 100 fit
    _epoch(budget, loop, clock, 2, 0.03)
    totals = []
    for number in range(3, 60):
        # each epoch a little slower than the last: the total shrinks by about one
        _epoch(budget, loop, clock, number, 0.03 + 0.0004 * number)
        totals.append(loop.epochs)
    changes = sum(1 for before, after in zip([100, *totals], totals) if after != before)
    assert changes > 10 and listener.totals[-1] == loop.epochs < 80  # each was made
    assert 1 <= len(listener.notes) <= 3  # but said only when it added up to a quarter
    assert "cut from 100 to" in listener.notes[0] and "0.0" in listener.notes[0]
    said = [int(note.split(" to ")[1].split(" ")[0]) for note in listener.notes]
    assert all(later <= 0.75 * earlier for earlier, later in zip([100, *said], said))


def test_a_raise_keeps_half_an_epoch_spare(clock):
    """An epoch raised that barely fits would be cut again at the next check (which takes
    the slower of the last two epochs), stopping the run before its schedule anneals."""
    loop = _loop(3)
    budget = Budget(loop, TrainConfig(data="x", lr=0.01), 40.0, 6)
    _epoch(budget, loop, clock, 1, 10.0)  # 30 s left: 2 more fit, 2 planned
    assert loop.epochs == 3
    _epoch(budget, loop, clock, 2, 9.0)  # 21 s left: a third would fit with 3 s spare
    assert loop.epochs == 3
    clock.now, roomy = 0.0, _loop(3)
    budget = Budget(roomy, TrainConfig(data="x", lr=0.01), 45.0, 6)
    _epoch(budget, roomy, clock, 1, 10.0)  # 35 s left: 3 more, with 5 s spare
    assert roomy.epochs == 4


def test_under_torchrun_every_rank_takes_rank_0s_total(clock, monkeypatch):
    """Each rank times its own epochs: ranks that chose different totals would each wait
    for ever on the other's next collective, so every rank takes rank 0's."""
    chosen = []

    def rank_0s(value):  # as `broadcast` on a rank other than 0: rank 0 chose 7
        chosen.append(value)
        return 7
    monkeypatch.setattr(budget_module, "broadcast", rank_0s)
    loop = _loop(10)
    budget = Budget(loop, TrainConfig(data="x", epochs=10, lr=0.01), 11.0, 10)
    _epoch(budget, loop, clock, 1, 2.0)
    assert chosen == [5]  # what this rank alone would have cut to
    assert loop.epochs == 7 and loop.state.scheduler.total_steps == 7 * STEPS


def test_a_budget_spent_stops_after_the_epoch(clock):
    loop, listener = _loop(10), Listener()
    budget = Budget(loop, TrainConfig(data="x", lr=0.01), 3.0, 10, [listener])
    _epoch(budget, loop, clock, 1, 2.5)
    assert loop.epochs == 1 and "training stops with the best weights" in listener.notes[0]


def _scorer(clock: Clock, per_image: dict[bool, float], calls: list[bool]):
    """A validation pass that takes ``per_image`` seconds per image, fp32 (True) or at the
    training's precision (False), as the epochs call it (no ``honest``)."""
    def score(network, split, honest: bool = False):
        calls.append(honest)
        clock.now += per_image[honest] * len(split)
    return score


def _scored_epoch(budget: Budget, loop, clock: Clock, number: int, score, seconds: float,
                  val: int) -> None:
    """An epoch of ``seconds`` of steps, then its validation pass through ``score``."""
    budget.on_epoch_start(number)
    clock.now += seconds
    started = clock.now
    score(None, range(val))
    loop.state.step += STEPS
    stats = EpochStats(number, 0.0, 0.0, None, None, 0.0, seconds + clock.now - started, 25.0)
    loop.epochs = refit_epochs(loop.epochs, stats, [budget, *budget.listeners])


def test_the_work_after_the_epochs_comes_off_the_budget_timed_by_the_epochs_passes(clock):
    """The budget is the command's: the images scored at the end (in fp32), the detector's
    (at the training's precision) and the files are kept from it. The first validation
    pass is made in fp32 to time the first kind; the second, as the epochs make it, the
    other."""
    loop, calls = _loop(10), []
    loop.autocast_dtype = torch.bfloat16
    budget = Budget(loop, TrainConfig(data="x", epochs=10, lr=0.01), 30.0, 10,
                    scored=(120, 40))  # 120 images scored in fp32 after the epochs, 40 not
    score = budget.timed(_scorer(clock, {True: 0.05, False: 0.02}, calls))
    _scored_epoch(budget, loop, clock, 1, score, 2.0, 20)  # 2 s of steps, 1 s of fp32 scoring
    assert calls == [True]
    # before a pass at the training's precision is timed, fp32's stands for it
    assert budget.tail == pytest.approx(0.05 * 160 + budget_module.FILES_SECONDS)
    assert loop.epochs == 1 + int((30.0 - budget.tail - 3.0) // 3.0)  # 8.5 s kept: 6 more
    _scored_epoch(budget, loop, clock, 2, score, 2.0, 20)  # 2 s of steps, 0.4 s of scoring
    assert calls == [True, False]  # the epochs' own passes, at the training's precision
    assert budget.tail == pytest.approx(0.05 * 120 + 0.02 * 40 + budget_module.FILES_SECONDS)


def test_in_fp32_every_pass_times_the_fp32_work(clock):
    loop, calls = _loop(10), []
    loop.autocast_dtype = None
    budget = Budget(loop, TrainConfig(data="x", epochs=10, lr=0.01), 60.0, 10,
                    scored=(120, 40))
    score = budget.timed(_scorer(clock, {True: 0.05, False: 0.03}, calls))
    for number in (1, 2):
        _scored_epoch(budget, loop, clock, number, score, 2.0, 20)
    # the latest pass's time (0.03 s an image), for both kinds
    assert budget.tail == pytest.approx(0.03 * 160 + budget_module.FILES_SECONDS)


def test_without_validation_images_the_work_after_is_a_share_of_a_step(clock):
    loop = _loop(10)
    loop.autocast_dtype = None
    budget = Budget(loop, TrainConfig(data="x", epochs=10, lr=0.01), 60.0, 10,
                    scored=(100, 0))  # the test images alone
    _epoch(budget, loop, clock, 1, 2.0, rate=25.0)
    assert budget.tail == pytest.approx(budget_module.FORWARD_SHARE / 25.0 * 100 +
                                        budget_module.FILES_SECONDS)
