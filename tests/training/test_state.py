"""TrainState holds everything a run needs to go on: saved after epoch 2 and put back into
freshly built objects, training on gives the same weights, bit for bit, as never stopping."""

from __future__ import annotations

import copy

import pytest
import torch

from convnet import data as datasets
from convnet.training import TrainConfig, prepare

DATA = "shapes:size=12,train=30,test=5"
CONFIG = dict(data=DATA, arch="conv6k3-bn-relu-maxpool2-dropout0.3-fc16-relu-fc", epochs=4,
              batch_size=16, augment="strong", ema=0.9, seed=3, val_split=0.2)


def _score(network, split):
    class Scores:
        loss, accuracy = 0.0, float(split.labels.float().mean())  # any stand-in number
        balanced_accuracy = accuracy
    return Scores()


def _trained(epochs_first: int | None) -> dict[str, torch.Tensor]:
    """Train CONFIG's epochs; with ``epochs_first``, stop there, save the state, build
    everything anew (its generators moved on, so nothing carries over by accident) and go
    on from the saved state."""
    dataset = datasets.load(DATA)
    config = TrainConfig(**CONFIG)
    run = prepare(dataset, config)
    if epochs_first is not None:
        run.loop.epochs = epochs_first
        run.loop.run(run.val_split, _score)
        saved = copy.deepcopy(run.state.state_dict())
        run = prepare(dataset, config)  # fresh objects: initial weights, epoch 0
        torch.rand(100)  # move the global generator on: the state must restore it
        run.state.generator.manual_seed(99)  # and the batch generator
        run.state.load_state_dict(saved)
    run.loop.run(run.val_split, _score)
    assert run.state.epoch == CONFIG["epochs"] and len(run.state.history) == CONFIG["epochs"]
    return {**run.state.network.state_dict(), **{f"best.{k}": v for k, v in
                                                  run.state.best_weights.items()}}


def test_a_state_put_back_trains_on_to_identical_weights():
    whole, resumed = _trained(None), _trained(2)
    assert whole.keys() == resumed.keys()
    for name in whole:
        assert torch.equal(whole[name], resumed[name]), name


def test_the_state_dict_holds_only_tensors_and_plain_values():
    run = prepare(datasets.load(DATA), TrainConfig(**{**CONFIG, "epochs": 1}))
    run.loop.run(run.val_split, _score)

    def plain(value) -> bool:
        if isinstance(value, dict):
            return all(isinstance(k, str | int) and plain(v) for k, v in value.items())
        if isinstance(value, list | tuple):
            return all(plain(v) for v in value)
        return value is None or isinstance(value, torch.Tensor | int | float | str | bool)

    state = run.state.state_dict()
    assert plain(state)
    assert set(state) == {"network", "optimizer", "scheduler", "ema", "generators", "epoch",
                          "step", "history", "best", "best_weights", "progress"}
    assert state["epoch"] == 1 and state["step"] == run.batches.steps


def _stats(epoch: int, accuracy: float, balanced: float):
    from convnet.training.callbacks import EpochStats

    return EpochStats(epoch, 1.0, 0.5, 1.0, accuracy, 1e-3, 1.0, 10.0,
                      val_balanced=balanced)


def test_a_run_that_weighs_its_classes_keeps_the_epoch_of_the_best_balanced_accuracy():
    """On 90 images of one class and 10 of another, answering the large class scores 90%
    accuracy and 50% balanced; an epoch that finds 8 of the 10 at the cost of 10 of the 90
    scores 88% and 84%. Weighed classes keep the second; plain ones the first."""
    majority, found = _stats(1, 0.90, 0.50), _stats(2, 0.88, (80 / 90 + 8 / 10) / 2)
    for balanced, kept in ((True, found), (False, majority)):
        run = prepare(datasets.load(DATA), TrainConfig(**{**CONFIG, "epochs": 2}))
        run.state.balanced = balanced
        for stats in (majority, found):
            run.state.end_epoch(stats)
        assert run.state.best is kept


def test_imbalanced_data_weighs_its_classes_and_ranks_by_balanced_accuracy():
    dataset = datasets.load(DATA)
    assert not prepare(dataset, TrainConfig(**CONFIG)).state.balanced  # shapes: even classes
    assert prepare(dataset, TrainConfig(**CONFIG, balance="weights")).state.balanced
    assert prepare(dataset, TrainConfig(**CONFIG, balance="sampler")).state.balanced


def test_the_moving_average_is_young_while_the_run_is():
    """Its span (1 / (1 - decay)) is at most 1 + a quarter of the steps taken, and the
    planned decay once the run is old enough."""
    from convnet.training.state import YOUNG_SHARE, ema_decay

    for step in (0, 1, 4, 26, 100, 10_000):
        span = 1 / (1 - ema_decay(0.99, step))
        assert span == pytest.approx(min(100.0, 1 + YOUNG_SHARE * step))
    assert ema_decay(0.9, 10_000) == 0.9


def test_the_moving_average_against_a_reference_by_hand():
    """A network's weights after each step, averaged by `MovingAverage` and by the
    formula in numpy: the first copied, then each mixed in at that step's decay."""
    import numpy as np

    from convnet.training.state import ema_decay, make_ema

    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    average = make_ema(network, 0.8)
    expected = None
    for step in range(12):
        with torch.no_grad():
            for tensor in [*network.parameters(), network[1].running_mean]:
                tensor.add_(torch.randn_like(tensor))
        weights = np.concatenate([network[0].weight.detach().numpy().ravel(),
                                  network[1].running_mean.numpy().ravel()])
        decay = ema_decay(0.8, step)
        expected = weights if expected is None else decay * expected + (1 - decay) * weights
        average.step(network, step)
    module = average.module
    found = np.concatenate([module[0].weight.detach().numpy().ravel(),
                            module[1].running_mean.numpy().ravel()])
    np.testing.assert_allclose(found, expected, rtol=1e-6, atol=1e-6)
    assert make_ema(network, 0) is None
