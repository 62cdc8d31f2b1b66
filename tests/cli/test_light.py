"""The commands that only read and list answer without importing torch: `convnet --help`
(and every command's help), `convnet runs` and `convnet datasets`. The commands that need
torch import it when they run."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import convnet

CHECK = """
import sys
from convnet.cli import main
code = main(sys.argv[1:])
assert "torch" not in sys.modules, "torch was imported"
sys.exit(code)
"""


def _light(*argv: str) -> str:
    done = subprocess.run([sys.executable, "-c", CHECK, *argv], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["predict", "--help"]])
def test_help_does_not_import_torch(argv):
    assert "Usage: " in _light(*argv)


def test_datasets_and_runs_do_not_import_torch(tmp_path):
    assert "digits" in _light("datasets") and "cifar10" in _light("datasets")
    convnet.train(data="x-or-not-x:train=8,test=2", arch="conv4k3-relu-fc", epochs=1,
                  out=tmp_path / "runs" / "one")
    listed = _light("runs", str(tmp_path / "runs"))
    assert "one" in listed and "finished" in listed


def test_a_command_that_trains_still_imports_torch_when_it_runs():
    done = subprocess.run([sys.executable, "-c", CHECK, "summary", "lenet"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "torch was imported" in done.stderr


def test_every_named_dataset_loads_by_that_name():
    from convnet.data import named, sources

    assert set(named.catalogue()) == set(sources._BUILT_IN)
