"""The README's torch-free example, run in a fresh virtual environment that has only
onnxruntime, numpy and Pillow, answers as `convnet predict` does."""

from __future__ import annotations

import json
import subprocess
import venv
from pathlib import Path

import pytest
from PIL import Image

import convnet
from conftest import TINY_ARCH
from convnet.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "onnx_predict.py"
pytest.importorskip("onnxscript")


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory) -> Path:
    """A new environment: pip installs onnxruntime, numpy and Pillow from the same index."""
    home = tmp_path_factory.mktemp("bare-venv")
    venv.create(home, with_pip=True)
    python = home / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", "onnxruntime",
                              "numpy", "pillow"], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]
    no_torch = subprocess.run([str(python), "-c", "import torch"], capture_output=True)
    assert no_torch.returncode != 0  # the point of the test: torch is not there
    return python


def test_the_example_needs_no_torch_and_agrees_with_predict(bare_python, tmp_path, capsys):
    # enough validation images for an "unknown" detector, whose verdict the file gives too
    run = convnet.train(data="x-or-not-x:size=12,train=80,test=10", arch=TINY_ARCH, epochs=2,
                        val_split=0.3, out=tmp_path / "run").path
    assert convnet.load(run).predictor.detector is not None
    assert main(["export", str(run)]) == 0
    capsys.readouterr()
    for index, (size, fill) in enumerate([((30, 20), 40), ((12, 12), 230)]):
        image = tmp_path / f"{index}.png"
        Image.new("L", size, fill).save(image)
        answer = subprocess.run([str(bare_python), str(EXAMPLE), str(run / "model.onnx"),
                                 str(image)], capture_output=True, text=True, timeout=120)
        assert answer.returncode == 0, answer.stderr
        assert main(["predict", str(run), str(image), "--json"]) == 0
        expected = json.loads(capsys.readouterr().out)
        lines = answer.stdout.strip().splitlines()
        assert lines[:-1] == [f"{row['probability']:.2f} {row['class']}"
                              for row in expected["top"]]
        verdict = "unknown" if expected["unknown"] else "known"
        assert lines[-1].startswith(f"{verdict} (score {expected['unknown_score']:.4g};")
