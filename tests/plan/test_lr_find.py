"""The learning-rate range test: it leaves the run as it found it, suggests where the loss
falls fastest, and `--lr find` trains with that suggestion and keeps the sweep."""

from __future__ import annotations

import json

import pytest
import torch

import convnet
from conftest import TINY_ARCH, TINY_DATA
from convnet.cli import main
from convnet.training.config import TrainConfig
from convnet.training.lr_find import suggest, sweep
from convnet.training.setup import prepare


def test_a_sweep_leaves_the_weights_and_the_optimizer_as_they_were():
    dataset = convnet.datasets.load(TINY_DATA)
    run = prepare(dataset, TrainConfig(data=TINY_DATA, arch=TINY_ARCH, epochs=2,
                                       batch_size=16, lr=0.01, ema=0.0))
    weights = {k: v.clone() for k, v in run.network.state_dict().items()}
    lrs = [group["lr"] for group in run.state.optimizer.param_groups]
    found = sweep(run, steps=30)
    assert len(found.lrs) == len(found.losses) <= 30
    assert all(b > a for a, b in zip(found.lrs, found.lrs[1:]))  # exponential, rising
    for name, tensor in run.network.state_dict().items():
        assert torch.equal(tensor, weights[name]), name
    assert [group["lr"] for group in run.state.optimizer.param_groups] == lrs
    assert not run.state.optimizer.state  # no moments left behind by the sweep


def test_the_suggestion_is_two_thirds_along_the_longest_fall():
    lrs = [1e-5 * 10 ** (i / 10) for i in range(50)]  # 1e-5 ... ~1e0
    # rising noise (0-9), a steady fall (10-40) with one bump at 20, then diverging
    losses = [2.0 + 0.1 * i for i in range(10)] + \
        [3.0 - (i - 10) / 15 + (0.2 if i == 20 else 0.0) for i in range(10, 41)] + \
        [1.0 + 0.5 * (i - 40) for i in range(41, 50)]
    assert suggest(lrs, losses) == lrs[10 + (40 - 10) * 2 // 3]
    assert suggest(lrs[:2], losses[:2]) == lrs[0]


def test_lr_find_prints_a_suggestion_and_train_with_lr_find_keeps_the_sweep(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    options = ["--data", TINY_DATA, "--arch", TINY_ARCH, "--epochs", "2", "--batch-size", "16"]
    assert main(["lr-find", *options, "--plot", str(tmp_path / "sweep.png")]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("suggested lr: ") and (tmp_path / "sweep.png").is_file()
    suggested = float(printed.split()[2])
    assert main(["train", *options, "--lr", "find", "--out", str(tmp_path / "run"),
                 "--no-report"]) == 0
    assert "lr find: suggested lr" in capsys.readouterr().out
    kept = json.loads((tmp_path / "run" / "lr_find.json").read_text())
    meta = json.loads((tmp_path / "run" / "model.json").read_text())
    assert meta["config"]["lr"] == float(f"{kept['suggestion']:.3g}") == suggested
    assert main(["train", *options, "--lr", "fast"]) == 2
    assert "neither a number nor 'find'" in capsys.readouterr().err
