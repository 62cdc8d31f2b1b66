"""The real training loop on tiny data, and what it leaves on disk."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

import convnet
from conftest import TINY_ARCH, TINY_DATA
from convnet.errors import ConvnetError


def test_run_folder_contents(tiny_run):
    assert sorted(p.name for p in tiny_run.iterdir()) == [
        "metrics.csv", "model.json", "model.safetensors"]
    meta = json.loads((tiny_run / "model.json").read_text())
    assert meta["spec"] == "conv4k3-relu-maxpool2-fc8-relu-fc2"
    assert meta["classes"] == ["x", "not-x"]
    assert meta["input_shape"] == [12, 12, 1]
    assert meta["config"]["epochs"] == 2 and meta["config"]["arch"] == TINY_ARCH
    assert set(meta["versions"]) == {"convnet", "python", "torch", "numpy"}
    assert meta["data"]["fingerprint"] == convnet.datasets.load(TINY_DATA).fingerprint()
    # the recorded test accuracy, recomputed by hand: weights from the file, the recorded
    # normalisation, a plain forward pass
    test = convnet.datasets.load(TINY_DATA).test
    network = convnet.build(meta["spec"], tuple(meta["input_shape"]), 2).eval()
    network.load_state_dict(load_file(tiny_run / "model.safetensors"))
    norm = meta["normalization"]
    x = (test.images.float() / 255 - norm["mean"][0]) / norm["std"][0]
    with torch.no_grad():
        logits = network(x)
        if meta["tta"] == "flip":  # the mean with the mirror image's logits
            logits = (logits + network(x.flip(3))) / 2
        hits = (logits.argmax(1) == test.labels).float().mean().item()
    assert meta["metrics"]["test"]["accuracy"] == pytest.approx(hits)
    # an unset share on 80 images: the most, 20% (16), toward 200 held out
    assert meta["validation"]["source"] == "held-out" and meta["validation"]["count"] == 16
    # conv4k3 on 12×12×1: 4·9+4 = 40; 5×5×4 = 100 → fc8: 808; fc2: 18.
    assert meta["params"] == 40 + 808 + 18
    rows = list(csv.DictReader((tiny_run / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert not [p for p in tiny_run.parent.iterdir() if p.name.startswith(".")]


def test_loading_needs_no_pickle_and_gives_the_same_probabilities_in_a_fresh_process(tiny_run):
    images = convnet.datasets.load(TINY_DATA).test.images[:5]
    here = convnet.load(tiny_run).predict(images)
    assert torch.allclose(here.sum(1), torch.ones(5))
    code = (
        "import sys, json, convnet, torch\n"
        f"images = convnet.datasets.load({TINY_DATA!r}).test.images[:5]\n"
        "print(json.dumps(convnet.load(sys.argv[1]).predict(images).tolist()))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tiny_run)], capture_output=True,
                          text=True, check=True)
    assert torch.equal(torch.tensor(json.loads(done.stdout)), here)
    assert set(load_file(tiny_run / "model.safetensors")) == set(
        convnet.load(tiny_run).network.state_dict())


def _weights(path):
    return load_file(path / "model.safetensors")


def test_same_seed_same_weights_other_seed_other_weights(tmp_path):
    # a fixed thread count: the automatic one follows the machine's load, and the count
    # changes the order of floating-point sums
    options = dict(data=TINY_DATA, arch="conv4k3-bn-relu-maxpool2-fc", epochs=2, batch_size=16,
                   threads=1)
    convnet.train(out=tmp_path / "a", seed=1, **options)
    convnet.train(out=tmp_path / "b", seed=1, **options)
    convnet.train(out=tmp_path / "c", seed=2, **options)
    a, b, c = (_weights(tmp_path / name) for name in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_training_learns_the_x_or_not_x_task(tmp_path):
    result = convnet.train(data="x-or-not-x:size=16,train=200,test=50", arch="default",
                           epochs=8, batch_size=32, out=tmp_path / "run")
    assert result.history[-1].train_loss < result.history[0].train_loss
    assert result.test.accuracy >= 0.9


def test_an_existing_run_is_never_overwritten(tiny_run):
    before = (tiny_run / "model.safetensors").read_bytes()
    with pytest.raises(ConvnetError, match="already exists and is not empty"):
        convnet.train(data=TINY_DATA, arch=TINY_ARCH, epochs=1, out=tiny_run)
    assert (tiny_run / "model.safetensors").read_bytes() == before


def test_automatic_run_names_do_not_collide(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = convnet.train(data=TINY_DATA, arch=TINY_ARCH, epochs=1).path
    second = convnet.train(data=TINY_DATA, arch=TINY_ARCH, epochs=1).path
    assert first != second and first.parent.name == "runs" and second.is_dir()


def test_a_failed_run_leaves_nothing_behind_until_its_first_checkpoint(tmp_path):
    class Boom(convnet.callbacks.Callback):
        def __init__(self, when: str):
            self.when = when

        def on_epoch_start(self, epoch):
            if self.when == "start":
                raise RuntimeError("boom")

        def on_epoch_end(self, stats):  # called after the epoch's checkpoint
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="^boom$"):
        convnet.train(data=TINY_DATA, arch=TINY_ARCH, epochs=1, out=tmp_path / "run",
                      callbacks=[Boom("start")])
    assert list(tmp_path.iterdir()) == []
    # a crash after a checkpoint: the run stays, resumable
    with pytest.raises(RuntimeError, match="^boom$"):
        convnet.train(data=TINY_DATA, arch=TINY_ARCH, epochs=2, out=tmp_path / "run",
                      callbacks=[Boom("end")])
    with pytest.raises(convnet.RunError, match="is an unfinished run, stopped at epoch 1"):
        convnet.load(tmp_path / "run")
    result = convnet.train(resume=tmp_path / "run")
    assert [s.epoch for s in result.history] == [1, 2] and convnet.load(result.path)


@pytest.mark.parametrize("options, message", [
    ({"epochs": -1}, "epochs must be a positive integer. Received: "
     "epochs=-1."),
    ({"epochs": 0}, "epochs=0 trains only a new head on trained features, so it needs "
     "weights to start from, and these are random. Give init='imagenet'"),
    ({"epochs": 0, "init": "scratch"}, "epochs=0 trains only a new head"),
    ({"epochs": 0, "init": "imagenet", "freeze_epochs": 0}, "epochs=0 with freeze_epochs=0 "
     "trains nothing"),
    ({"batch_size": -4}, "batch_size must be a positive integer. "
     "Received: batch_size=-4."),
    ({"optimizer": "rmsprop"}, "optimizer must be one of adamw, adam, sgd. Received: "
     "optimizer='rmsprop'."),
    ({"val_split": 1.0}, "val_split must be in [0, 1)"),
    ({"lr": 0.0}, "lr must be a positive number. Received: lr=0.0."),
    ({"colour": 1}, "Unknown training option(s): colour."),
])
def test_bad_options(options, message):
    with pytest.raises(ConvnetError) as caught:
        convnet.train(data=TINY_DATA, **options)
    assert message in str(caught.value)


def test_spec_that_does_not_fit_the_data_fails_before_anything_is_written(tmp_path):
    with pytest.raises(convnet.SpecError, match="below 1"):
        convnet.train(data=TINY_DATA, arch="conv8k5-maxpool2-conv8k5-fc", out=tmp_path / "r")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("balance, said", [("weights", True), ("sampler", True),
                                           ("none", False)])
def test_a_run_that_weighs_its_classes_says_it_ranks_its_epochs_by_balanced_accuracy(
        tmp_path, balance, said):
    from convnet.training.callbacks import Callback

    class Notes(Callback):
        def __init__(self):
            self.lines: list[str] = []

        def on_notice(self, line: str) -> None:
            self.lines.append(line)
    notes = Notes()
    result = convnet.train(data=TINY_DATA, arch=TINY_ARCH, epochs=2, balance=balance,
                           out=tmp_path / "run", callbacks=[notes])
    assert any("balanced accuracy" in line for line in notes.lines) == said
    assert all(stats.val_balanced is not None for stats in result.history)
    kept = max(result.history, key=lambda stats: (stats.val_balanced if said else
                                                  stats.val_acc, stats.epoch))
    assert result.best_epoch == kept.epoch
