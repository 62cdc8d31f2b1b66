"""`convnet export` on real runs: the parity line, the metadata, `predict --backend onnx`,
flip TTA inside the graph, and every refusal as one line with nothing overwritten."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from PIL import Image

import convnet
from convnet.cli import main
from convnet.export import export_onnx, metadata
from convnet.training import checkpoint

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def _one_line_error(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@pytest.fixture(scope="module")
def flip_run(tmp_path_factory):
    """A run trained with flips, so that its predictions average the mirror image."""
    out = tmp_path_factory.mktemp("runs") / "shapes"
    convnet.train(data="shapes:size=16,train=30,test=12", arch="conv6k3-bn-relu-maxpool2-fc",
                  epochs=1, batch_size=16, flip=True, out=out)
    return out


def test_export_checks_parity_and_carries_the_metadata(tiny_run, tmp_path, capsys):
    run = shutil.copytree(tiny_run, tmp_path / "run")
    assert main(["export", str(run)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"wrote {run / 'model.onnx'} (")
    assert "parity with PyTorch on 28 images of x-or-not-x test: max |Δp| " in line
    assert line.endswith("top-1 agreement 28/28")  # 20 test images, then 1 and 7 of them
    meta = metadata(run / "model.onnx")
    record = convnet.load(run).record
    assert meta["classes"] == record.classes and meta["input_shape"] == list(record.input_shape)
    assert meta["weights_sha256"] == record.weights_sha256 and meta["tta"] == record.tta
    assert meta["preprocess"] == record.preprocess.to_dict()

    image = tmp_path / "x.png"
    Image.new("L", (30, 20), 200).save(image)
    assert main(["predict", str(run), str(image), "--json"]) == 0
    torch_answer = json.loads(capsys.readouterr().out)
    assert main(["predict", str(run), str(image), "--json", "--backend", "onnx"]) == 0
    onnx_answer = json.loads(capsys.readouterr().out)
    assert onnx_answer["top"][0]["class"] == torch_answer["top"][0]["class"]
    for name, p in torch_answer["probabilities"].items():
        assert abs(onnx_answer["probabilities"][name] - p) < 1e-5


def test_a_flip_tta_run_exports_with_the_flip_inside(flip_run, tmp_path):
    run = shutil.copytree(flip_run, tmp_path / "run")
    assert convnet.load(run).record.tta == "flip"
    done = export_onnx(run, batch=4)
    assert metadata(done.path)["tta"] == "flip"
    assert done.parity.ok and done.parity.images == 72  # 12 test images of 6 classes, by 4


def test_refusals_are_one_line_and_overwrite_nothing(tiny_run, tmp_path, capsys):
    run = shutil.copytree(tiny_run, tmp_path / "run")
    (run / "model.onnx").write_text("mine")
    assert main(["export", str(run)]) == 1
    assert "model.onnx already exists; nothing was overwritten. Add --force" in \
        _one_line_error(capsys)
    assert (run / "model.onnx").read_text() == "mine"
    assert main(["export", str(run), "--force"]) == 0
    capsys.readouterr()
    assert main(["export", str(run), "--opset", "9", "--out", str(tmp_path / "o9.onnx")]) == 1
    assert "--opset 9: the installed torch" in _one_line_error(capsys)
    assert not (tmp_path / "o9.onnx").exists()
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("root writes anywhere")
        assert main(["export", str(run), "--out", str(locked / "m.onnx")]) == 1
        assert "not a writable folder" in _one_line_error(capsys)
    finally:
        os.chmod(locked, 0o700)


def test_missing_and_unfinished_runs_and_no_model_file(tiny_run, tmp_path, capsys):
    assert main(["export", str(tmp_path / "nope")]) == 1
    assert "does not exist" in _one_line_error(capsys)
    unfinished = tmp_path / "cut"
    unfinished.mkdir()
    checkpoint.save(unfinished, {"x": torch.ones(1)}, {"epoch": 1, "in_epoch": None})
    assert main(["export", str(unfinished)]) == 1
    assert "is an unfinished run" in _one_line_error(capsys)
    run = shutil.copytree(tiny_run, tmp_path / "run")
    image = tmp_path / "x.png"
    Image.new("L", (12, 12)).save(image)
    assert main(["predict", str(run), str(image), "--backend", "onnx"]) == 1
    assert "model.onnx does not exist. Export the run first" in _one_line_error(capsys)
