"""The Python API checks its arguments at the boundary, Keras-style (argument, expectation,
``Received:``), instead of failing deep inside with an AttributeError or TypeError; and a
diverging run stops with one clear error and saves nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import convnet
from conftest import TINY_DATA
from convnet.errors import ConvnetError, TrainingError


@pytest.mark.parametrize("call, message", [
    (lambda: convnet.build(123), "spec must be a spec string or a preset name, e.g. "
     "'conv32k3-relu-maxpool2-fc' or 'lenet'. Received: spec=123 (int)."),
    (lambda: convnet.build("lenet", num_classes="10"),
     "num_classes must be an integer of at least 2. Received: num_classes='10'."),
    (lambda: convnet.train(lr="fast"), "lr must be a number or None. Received: lr='fast' (str)."),
    (lambda: convnet.train(data=None), "data must be a dataset name or a folder (str or Path). "
     "Received: data=None (NoneType)."),
    (lambda: convnet.train(epochs=2.5),
     "epochs must be an integer or None. Received: epochs=2.5 (float)."),
    (lambda: convnet.train(strict="yes"),
     "strict must be True or False. Received: strict='yes' (str)."),
    (lambda: convnet.train(flip=1), "flip must be True or False or None. Received: flip=1 (int)."),
    (lambda: convnet.load(123), "path must be a run folder (a str or Path), e.g. "
     "'runs/digits-default-...'. Received: path=123 (int)."),
    (lambda: convnet.summarize(42), "network must be a Network (convnet.build, run.network) or "
     "a spec string. Received: network=42 (int)."),
])
def test_wrong_types_get_a_clear_error(call, message):
    with pytest.raises(ConvnetError) as caught:
        call()
    assert str(caught.value) == message


def test_a_path_is_fine_where_a_data_name_is_asked():
    config = convnet.TrainConfig(data=Path("some/folder"))
    assert config.data == "some/folder"


def test_run_predict_with_a_wrong_type(tiny_run):
    run = convnet.load(tiny_run)
    with pytest.raises(ConvnetError, match=r"images must be a uint8 tensor \(N, C, H, W\). "
                                           r"Received: int."):
        run.predict(123)
    with pytest.raises(ConvnetError, match=r"images must be uint8 of shape \(N, 1, 12, 12\)"):
        run.predict(torch.zeros(2, 3, 12, 12))


def test_summarize_takes_a_spec_string_too():
    summary = convnet.summarize("conv8k3-fc", input_shape="10x10x1", num_classes=2)
    assert summary.params == convnet.summarize(convnet.build("conv8k3-fc", "10x10x1", 2)).params
    assert summary.params == (8 * 9 + 8) + (8 * 8 * 8 * 2 + 2)


def test_the_comparison_says_more_when_the_cnn_is_larger():
    small_input = convnet.summarize("conv64k3p1-conv64k3p1-fc", hidden=10,
                                    input_shape="8x8x1", num_classes=2)
    assert small_input.params > 64 * 10 + 10 * 2 + 12
    assert small_input.comparison().endswith("× more.")
    assert convnet.summarize("lenet").comparison().endswith("× fewer.")


def test_a_diverging_run_stops_with_one_line_and_saves_nothing(tmp_path):
    with pytest.raises(TrainingError) as caught:
        convnet.train(data=TINY_DATA, arch="conv4k3-relu-fc", epochs=3, batch_size=8,
                      lr=1e9, ema=0.0, out=tmp_path / "run")
    message = str(caught.value)
    assert re.match(r"The training loss became (nan|inf) in epoch 1 at step \d+, at learning "
                    r"rate [\d.e+]+: the weights diverged", message), message
    assert "nothing was saved" in message and "Try a smaller lr (e.g. lr=" in message
    assert not (tmp_path / "run").exists() and list(tmp_path.iterdir()) == []
