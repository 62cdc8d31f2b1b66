"""Loading runs: every way a run folder can be wrong gives one clear error."""

from __future__ import annotations

import json
import pickle
import shutil

import pytest
from PIL import Image

import convnet
from convnet.errors import RunError


@pytest.fixture
def copy(tiny_run, tmp_path):
    target = tmp_path / "run"
    shutil.copytree(tiny_run, target)
    return target


def test_missing_weights(copy):
    (copy / "model.safetensors").unlink()
    with pytest.raises(RunError, match="is missing model.safetensors; it is not a complete run"):
        convnet.load(copy)


def test_missing_folder(tmp_path):
    with pytest.raises(RunError, match="does not exist"):
        convnet.load(tmp_path / "nope")


def test_incompatible_version(copy):
    meta = json.loads((copy / "model.json").read_text())
    meta["format"] = 99
    meta["convnet_version"] = "9.0"
    (copy / "model.json").write_text(json.dumps(meta))
    with pytest.raises(RunError, match=r"written by convnet 9.0 in run format 99; this convnet "
                                       r".* reads formats 1, 2"):
        convnet.load(copy)


def test_damaged_json(copy):
    (copy / "model.json").write_text("{not json")
    with pytest.raises(RunError, match="is not valid JSON"):
        convnet.load(copy)


def test_flipped_byte_is_caught_by_the_recorded_sha256(copy):
    data = bytearray((copy / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (copy / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(RunError, match="does not match the SHA-256 in model.json"):
        convnet.load(copy)


class _Payload:
    def __reduce__(self):
        return (print, ("pickle payload ran",))


def test_a_pickle_in_place_of_the_weights_is_refused_and_never_runs(copy, capsys):
    (copy / "model.safetensors").write_bytes(pickle.dumps(_Payload()))
    meta = json.loads((copy / "model.json").read_text())
    del meta["weights"]  # without the checksum, the safetensors parser must still refuse it
    (copy / "model.json").write_text(json.dumps(meta))
    with pytest.raises(RunError, match="cannot be loaded"):
        convnet.load(copy)
    assert "pickle payload ran" not in capsys.readouterr().out


def test_weights_for_another_architecture(copy):
    meta = json.loads((copy / "model.json").read_text())
    meta["spec"] = "conv6k3-relu-maxpool2-fc8-relu-fc2"
    del meta["weights"]
    (copy / "model.json").write_text(json.dumps(meta))
    with pytest.raises(RunError, match="does not fit the spec in model.json"):
        convnet.load(copy)


def test_predict_files_keeps_going_past_a_bad_file(tiny_run, tmp_path):
    good = tmp_path / "good.png"
    Image.new("RGB", (30, 20), (250, 250, 250)).save(good)
    bad = tmp_path / "bad.jpg"
    bad.write_text("this is text")
    results = convnet.load(tiny_run).predict_files([good, bad, tmp_path / "missing.png"])
    assert results[0].error is None and set(results[0].probabilities) == {"x", "not-x"}
    assert abs(sum(results[0].probabilities.values()) - 1) < 1e-5
    assert results[1].error.startswith("not an image (allowed: PNG, JPEG")
    assert results[2].error == "no such file."


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16"])
def test_any_pillow_mode_becomes_the_models_channels(tiny_run, tmp_path, mode):
    path = tmp_path / f"image.{'tiff' if mode in ('CMYK', 'I;16') else 'png'}"
    Image.new(mode, (40, 25)).save(path)
    [result] = convnet.load(tiny_run).predict_files([path])
    assert result.error is None, result.error


def test_evaluate_data_defaults_to_the_runs_own_data_and_checks_classes(tiny_run):
    run = convnet.load(tiny_run)
    assert run.evaluate_data().count == 20
    with pytest.raises(convnet.ConvnetError, match="The data's classes .* are not the run's"):
        run.evaluate_data("shapes:size=12,train=2,test=1")
