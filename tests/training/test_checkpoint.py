"""Checkpoints on disk: the state tree survives safetensors + JSON exactly, a stop in the
middle of an epoch resumes to the same weights bit for bit, and damaged files are named."""

from __future__ import annotations

import json

import pytest
import torch
from test_state import CONFIG, DATA, _score

from convnet import data as datasets
from convnet.errors import ConvnetError, Interrupted, RunError
from convnet.training import TrainConfig, checkpoint, prepare
from convnet.training.callbacks import Callback


def test_encode_decode_keeps_types_keys_and_tensors():
    tree = {"a": torch.arange(3), "state": {0: {"m": torch.ones(2)}, 1: {}},
            "betas": (0.9, 0.99), "list": [1, None, "x", 2.5, True], "none": None}
    tensors: dict[str, torch.Tensor] = {}
    back = checkpoint.decode(json.loads(json.dumps(checkpoint.encode(tree, tensors))), tensors)
    assert back.keys() == tree.keys() and list(back["state"]) == [0, 1]
    assert back["betas"] == (0.9, 0.99) and back["list"] == tree["list"]
    assert torch.equal(back["a"], tree["a"]) and torch.equal(back["state"][0]["m"], torch.ones(2))


def test_tensors_come_back_in_the_layout_they_were_saved_in():
    """A channels-last weight and a transposed matrix keep their strides; a tensor that
    does not fill its memory (an expanded view) comes back row-major with its values."""
    tree = {"nhwc": torch.randn(8, 3, 5, 5).contiguous(memory_format=torch.channels_last),
            "transposed": torch.randn(4, 6).t(), "plain": torch.randn(2, 3),
            "expanded": torch.randn(3, 1).expand(3, 4), "one_channel":
            torch.randn(6, 1, 3, 3).contiguous(memory_format=torch.channels_last)}
    tensors: dict[str, torch.Tensor] = {}
    back = checkpoint.decode(json.loads(json.dumps(checkpoint.encode(tree, tensors))), tensors)
    for name, tensor in tree.items():
        assert torch.equal(back[name], tensor), name
        if name != "expanded":
            assert back[name].stride() == tensor.stride(), name
    assert back["expanded"].is_contiguous()


def test_a_format_1_checkpoint_is_still_read(tmp_path):
    checkpoint.save(tmp_path, {"x": torch.ones(2)}, {"n": 1})
    meta = tmp_path / "checkpoint.1.json"
    meta.write_text(meta.read_text().replace('"format": 2', '"format": 1'))
    state, info = checkpoint.load(tmp_path)
    assert info == {"n": 1} and torch.equal(state["x"], torch.ones(2))


def _weights(run) -> dict[str, torch.Tensor]:
    return {**run.state.network.state_dict(),
            **{f"best.{k}": v for k, v in run.state.best_weights.items()}}


@pytest.mark.parametrize("arch", [
    CONFIG["arch"],
    # a convolution on several channels: its channels-last weight has other strides than a
    # row-major one, and so do Adam's moments, which must come back as they trained
    "conv4k3-bn-relu-conv8k3p1-bn-relu-maxpool2-fc16-relu-fc",
])
def test_a_stop_mid_epoch_saved_to_disk_resumes_bit_for_bit(tmp_path, arch):
    dataset, config = datasets.load(DATA), TrainConfig(**{**CONFIG, "arch": arch})
    whole = prepare(dataset, config)
    whole.loop.run(whole.val_split, _score)

    run = prepare(dataset, config)
    steps = {"n": 0}

    class StopAtEpoch2Step2(Callback):
        def stop_after_step(self) -> str | None:
            steps["n"] += 1
            return "SIGINT" if steps["n"] == run.batches.steps + 2 else None
    with pytest.raises(Interrupted) as caught:
        run.loop.run(run.val_split, _score, [StopAtEpoch2Step2()])
    assert (caught.value.epoch, caught.value.step) == (2, 2)
    checkpoint.save(tmp_path, run.state.state_dict(), {"epoch": 2})
    state, info = checkpoint.load(tmp_path)
    assert info == {"epoch": 2}

    resumed = prepare(dataset, config)
    torch.rand(10)  # the generators moved on: the checkpoint must restore them
    resumed.state.load_state_dict(state)
    optimizer = resumed.state.optimizer
    for parameter in (p for group in optimizer.param_groups for p in group["params"]):
        for value in optimizer.state[parameter].values():
            if value.shape == parameter.shape:
                assert value.stride() == parameter.stride()
    resumed.loop.run(resumed.val_split, _score)
    expected, found = _weights(whole), _weights(resumed)
    assert all(torch.equal(expected[k], found[k]) for k in expected)
    assert [s.train_loss for s in whole.state.history] == \
        [s.train_loss for s in resumed.state.history]


def test_only_the_newest_pair_is_kept_and_a_cut_short_write_falls_back(tmp_path):
    checkpoint.save(tmp_path, {"x": torch.ones(2)}, {"n": 1})
    checkpoint.save(tmp_path, {"x": torch.zeros(2)}, {"n": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == \
        ["checkpoint.2.json", "checkpoint.2.safetensors"]
    (tmp_path / "checkpoint.3.safetensors").write_bytes(b"half a write")  # killed mid-save
    (tmp_path / "checkpoint.3.json").write_text('{"format": 1, "tensors_sha256": "0"')
    state, info = checkpoint.load(tmp_path)
    assert info == {"n": 2} and torch.equal(state["x"], torch.zeros(2))


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "checkpoint.1.safetensors").write_bytes(b"\0" * 10), "does not match"),
    (lambda d: (d / "checkpoint.1.json").write_text("{"), "cannot be read"),
    (lambda d: (d / "checkpoint.1.json").write_text('{"format": 99}'),
     "checkpoint format 99; this convnet reads format 1 or 2"),
])
def test_a_damaged_checkpoint_is_one_clear_error(tmp_path, damage, message):
    checkpoint.save(tmp_path, {"x": torch.ones(2)}, {})
    damage(tmp_path)
    with pytest.raises(RunError, match=message):
        checkpoint.load(tmp_path)


def test_a_pickle_is_never_loaded(tmp_path):
    checkpoint.save(tmp_path, {"x": torch.ones(2)}, {})
    torch.save({"x": torch.ones(2)}, tmp_path / "checkpoint.1.safetensors")  # a pickle
    with pytest.raises(RunError, match="does not match"):
        checkpoint.load(tmp_path)


def test_what_a_checkpoint_cannot_hold_or_read_is_one_clear_error():
    with pytest.raises(ConvnetError, match=r"Received: a object at /optimizer/extra\.$"):
        checkpoint.encode({"optimizer": {"extra": object()}}, {})
    with pytest.raises(RunError, match="a part of unknown kind 'set': it is damaged"):
        checkpoint.decode({"set": [1, 2]}, {})
