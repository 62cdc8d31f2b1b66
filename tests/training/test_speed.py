"""The fast path's switches: precision, compile, fused optimizers, recipes, flip TTA,
and the whitening layer inside a real training run."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import convnet
from conftest import TINY_DATA
from convnet.data.pixels import Normalization
from convnet.errors import ConvnetError
from convnet.runs.predictor import Predictor
from convnet.training.config import TrainConfig
from convnet.training.recipes import RECIPES
from convnet.training.speed import autocast_dtype, native_bf16

SHAPES = "shapes:size=16,train=120,test=40"


def test_auto_precision_is_bf16_only_with_native_support():
    cpu = torch.device("cpu")
    assert autocast_dtype("fp32", cpu) is None
    assert autocast_dtype("bf16", cpu) is torch.bfloat16
    assert autocast_dtype("auto", cpu) == (torch.bfloat16 if native_bf16(cpu) else None)


def test_bf16_training_runs_and_is_recorded(tmp_path):
    result = convnet.train(data=TINY_DATA, arch="conv4k3-bn-relu-maxpool2-fc", epochs=2,
                           batch_size=16, precision="bf16", out=tmp_path / "run")
    speed = json.loads((tmp_path / "run" / "model.json").read_text())["speed"]
    assert speed["precision"] == "bfloat16" and speed["channels_last"] is True
    assert all(p.dtype == torch.float32 for p in result.run.network.parameters())
    assert torch.isfinite(torch.tensor(result.history[-1].train_loss))


def test_recipe_fills_only_the_options_not_given():
    config = TrainConfig.from_dict({"recipe": "cifar-fast-cpu", "epochs": 3})
    options = RECIPES["cifar-fast-cpu"].options
    assert config.epochs == 3  # given explicitly: wins
    assert config.arch == options["arch"] and config.optimizer == "sgd"
    assert config.tta == "flip" and config.recipe == "cifar-fast-cpu"
    with pytest.raises(ConvnetError, match="recipe must be one of cifar-fast"):
        TrainConfig.from_dict({"recipe": "imagenet-in-18-minutes"})


def test_recipe_presets_build_on_cifar_input():
    for name in RECIPES:
        net = convnet.build(RECIPES[name].options["arch"], "32x32x3", 10)
        assert net.has_whitening and net.infos[-3].out_shape[1:] == (1, 1)


def test_flip_tta_is_the_mean_of_the_image_and_its_mirror():
    torch.manual_seed(0)
    net = convnet.build("conv4k3-relu-gap-fc", "8x8x3", 3).eval()
    images = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8)
    norm = Normalization(torch.full((3,), 0.5), torch.full((3,), 0.2))
    classes = ["a", "b", "c"]
    plain = Predictor(net, norm, classes).logits(images)
    mirrored = Predictor(net, norm, classes).logits(images.flip(3))
    both = Predictor(net, norm, classes, flip_tta=True).logits(images)
    torch.testing.assert_close(both, (plain + mirrored) / 2)
    # and against the texts' arithmetic, without the predictor: (pixels/255 - mean) / std
    x = (images.float() / 255 - 0.5) / 0.2
    torch.testing.assert_close(plain, net(x))


def test_whitened_run_trains_saves_and_reloads_with_tta(tmp_path):
    result = convnet.train(data=SHAPES, arch="whiten2-gelu-conv8k3p1-maxpool2-bn-gelu-gap-fc",
                           epochs=3, batch_size=32, flip=True, out=tmp_path / "run")
    meta = json.loads((tmp_path / "run" / "model.json").read_text())
    assert meta["tta"] == "flip"
    loaded = convnet.load(tmp_path / "run")
    first = loaded.network.body[0]
    assert torch.equal(first.weight, result.run.network.body[0].weight)
    half = first.weight.shape[0] // 2  # filters come in ± pairs
    assert first.weight.abs().sum() > 0 and torch.equal(first.weight[:half], -first.weight[half:])
    data = convnet.datasets.load(SHAPES)
    again = loaded.evaluate(data.test)
    assert again.accuracy == pytest.approx(result.test.accuracy)


def test_tta_follows_the_flips(tiny_run, tmp_path):
    meta = json.loads((tiny_run / "model.json").read_text())
    assert meta["tta"] == ("flip" if meta["augment"]["flip"] else "none")
    convnet.train(data=TINY_DATA, arch="conv4k3-relu-gap-fc", epochs=1, flip=False,
                  out=tmp_path / "run")
    assert json.loads((tmp_path / "run" / "model.json").read_text())["tta"] == "none"


def test_ema_saves_the_moving_average_of_the_weights(tmp_path):
    # one step per epoch, a constant rate, no validation: run "ema" must save
    # d·w1 + (1 - d)·w2, where w1 and w2 are the plain weights after steps 1 and 2 and d
    # the decay at the second step (0.2, not 0.5: the average of a young run is short)
    from convnet.training.state import ema_decay

    decay = ema_decay(0.5, 1)
    assert decay == pytest.approx(0.2)
    options = dict(data=TINY_DATA, arch="conv4k3-relu-maxpool2-fc", batch_size=10_000,
                   schedule="constant", val_split=0.0, seed=5, ema=0.0)
    convnet.train(out=tmp_path / "w1", epochs=1, **options)
    convnet.train(out=tmp_path / "w2", epochs=2, **options)
    convnet.train(out=tmp_path / "ema", epochs=2, **{**options, "ema": 0.5})
    w1, w2, ema = (convnet.load(tmp_path / name).network.state_dict()
                   for name in ("w1", "w2", "ema"))
    assert any(not torch.equal(w1[key], w2[key]) for key in w1)
    for key in w1:
        torch.testing.assert_close(ema[key], decay * w1[key] + (1 - decay) * w2[key])
    with pytest.raises(ConvnetError, match="ema must be the per-step decay"):
        TrainConfig(ema=1.0)


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                    reason="torch.compile on CPU needs a C++ compiler")
def test_compile_on_trains_the_same_network_and_is_recorded(tmp_path):
    options = dict(data=TINY_DATA, arch="conv4k3-relu-maxpool2-fc", epochs=1, batch_size=16,
                   seed=3)
    compiled = convnet.train(out=tmp_path / "on", compile="on", **options)
    plain = convnet.train(out=tmp_path / "off", **options)
    meta = json.loads((tmp_path / "on" / "model.json").read_text())
    assert meta["speed"]["compile"] is True
    on, off = compiled.run.network.state_dict(), plain.run.network.state_dict()
    for key in on:  # same seed, same steps: the same weights up to kernel rounding
        torch.testing.assert_close(on[key], off[key], atol=1e-4, rtol=1e-3)
