"""Resume is exact for every preset, not only for a one-convolution network: each preset
on an RGB folder (so that its first convolution is three channels deep), in fp32 or bf16,
stopped at one kind of point in a child process and resumed, ends with the weights,
metrics.csv and model.json of a run never interrupted; so does a planned run (every option
left unset), with its plan record, and a run with automatic threads while the count stays
the same.

The presets' layer kinds: convolutions with and without padding, batch norm, ReLU, tanh,
GELU, max and average pooling, global average pooling, dropout, fully connected layers and
the whitening layer (cifar-fast-cpu), all in channels-last layout like training itself.
"""

from __future__ import annotations

import json

import pytest

import convnet
from convnet.network import PRESETS
from convnet.network.spec import parse_spec
from resume_helpers import metrics, record, rgb_folder, run_child, same_weights

PRESET_NAMES = ["default", "small", "lenet", "tinyvgg", "keras-mnist", "cifar-fast-cpu"]
# EfficientNet-Lite's layer kinds in miniature (4.6 million weights would take a minute here):
# a TF-padded strided stem, an inverted-residual block with its skip, depthwise and
# bias-free convolutions, TF's batch-norm epsilon, ReLU6
LITE = ("conv8k3s2ptfnb-bneps0.001-relu6-skip-conv16k1nb-bneps0.001-relu6-dwconvk3ptfnb-"
        "bneps0.001-relu6-conv8k1nb-bneps0.001-add-conv32k1nb-bneps0.001-relu6-gap-"
        "dropout0.2-fc")
# 36 training images, 27 after validation: 3 steps per epoch, 9 in all; checkpoints only
# at epoch ends, so a kill inside an epoch loses steps that the resumed run does again
BASE = dict(epochs=3, batch_size=8, augment="light", ema=0.9, flip=True, seed=4,
            val_split=0.25, threads=1, checkpoint_every=0, lr=2e-3)
POINTS = [("step", 5, -9),      # mid-epoch 2, two steps after epoch 1's checkpoint
          ("epoch", 1, -9),     # right after epoch 1's checkpoint
          ("write", 2, -9),     # inside epoch 2's checkpoint write
          ("step", 9, -9),      # the last step
          ("SIGINT", 4, 130),
          ("SIGTERM", 8, 143)]
# each preset at another point, in fp32 and bf16 by turns, so that the suite stays short;
# bench/resume_matrix.py runs every preset at every point in both precisions
CASES = [(name, ("bf16", "fp32")[n % 2], *POINTS[n]) for n, name in enumerate(PRESET_NAMES)]
CASES.append((LITE, "fp32", "write", 2, -9))


def test_the_matrix_names_every_preset_but_the_gpu_one():
    # cifar-fast is cifar-fast-cpu wider; the Lites are LITE's layers, many more of them
    lites = {name for name in PRESETS if name.startswith("efficientnet-lite")}
    assert set(PRESET_NAMES) == set(PRESETS) - {"cifar-fast"} - lites
    assert set().union(*(_kinds(PRESETS[name].spec) for name in lites)) == _kinds(LITE)


def _kinds(spec: str) -> set[tuple]:
    """Each layer's kind and the options that change its arithmetic (not its sizes)."""
    return {(type(layer).__name__, getattr(layer, "name", None), getattr(layer, "eps", None),
             getattr(layer, "padding", None) == "tf", getattr(layer, "bias", None))
            for layer in parse_spec(spec)}


@pytest.fixture(scope="module")
def rgb(tmp_path_factory):
    return rgb_folder(tmp_path_factory.mktemp("data") / "rgb", train=12, test=2)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _own_cache(cache, monkeypatch):
    monkeypatch.setenv("CONVNET_CACHE", str(cache))  # the children inherit it


def _resume_matches(config: dict, point: str, count: int, code: int, root) -> None:
    whole = convnet.train(out=root / "whole", **config).path
    cut = root / "cut"
    child = run_child(cut, point, count, config)
    assert child.returncode == code, child.stderr[-2000:]
    convnet.train(resume=cut)
    assert same_weights(whole, cut)
    assert metrics(cut) == metrics(whole)
    assert record(cut) == record(whole)


@pytest.mark.parametrize("arch, precision, point, count, code", CASES)
def test_every_preset_resumes_exactly(rgb, tmp_path, arch, precision, point, count, code):
    config = {**BASE, "data": str(rgb), "arch": arch, "precision": precision}
    _resume_matches(config, point, count, code, tmp_path)


def test_a_planned_run_resumes_exactly_with_its_plan(tmp_path):
    """The options the planner decides left unset (epochs aside, to keep it short), on
    mixed-size RGB images."""
    data = rgb_folder(tmp_path / "mixed", classes=2, train=24, test=4, sizes=(36, 60))
    config = {"data": str(data), "seed": 2, "threads": 1, "epochs": 3}
    whole = convnet.train(out=tmp_path / "whole", **config)
    assert whole.run.record.plan is not None
    cut = tmp_path / "cut"
    assert run_child(cut, "step", 4, config).returncode == -9  # in epoch 2 or later
    convnet.train(resume=cut)
    assert same_weights(whole.path, cut)
    assert record(cut) == record(whole.path)  # the plan included


def test_automatic_threads_resume_exactly_while_the_count_holds(rgb, tmp_path):
    config = {**BASE, "data": str(rgb), "arch": "default", "threads": None}
    whole = convnet.train(out=tmp_path / "whole", **config)
    cut = tmp_path / "cut"
    assert run_child(cut, "step", 5, config).returncode == -9
    resumed = convnet.train(resume=cut)
    counts = {*whole.run.record.speed["threads_used"], *resumed.run.record.speed["threads_used"],
              *json.loads((tmp_path / "cut.threads").read_text())}
    if len(counts) > 1:
        pytest.skip(f"the machine got busy: training used {sorted(counts)} threads, and "
                    "exactness holds only at one count")
    assert same_weights(whole.path, cut)
