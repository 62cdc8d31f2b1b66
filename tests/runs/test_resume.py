"""A run interrupted anywhere and resumed ends with the same weights, bit for bit, and the
same metrics.csv (times aside) as a run never interrupted: SIGKILL mid-epoch, right after a
checkpoint, inside a checkpoint write and at the last step; SIGINT and SIGTERM; with an even
class sampler and with patience."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import convnet
from convnet.errors import RunError

CHILD = Path(__file__).with_name("resume_child.py")
# dropout, EMA, strong augmentation, OneCycle and a validation split; one thread, so that
# every process sums in the same order; a checkpoint at every progress check
BASE = dict(data="shapes:size=12,train=40,test=10", arch="conv6k3-bn-relu-maxpool2-dropout0.3-"
            "fc16-relu-fc", epochs=4, batch_size=16, augment="strong", ema=0.9, seed=5,
            val_split=0.2, threads=1, checkpoint_every=1e-9, lr=8e-3, flip=True)
VARIANTS = {"plain": {}, "sampler": {"balance": "sampler"},
            "patience": {"patience": 1, "epochs": 6}}
TIMES = {"seconds", "images_per_s", "data_seconds"}


def _metrics(folder: Path) -> list[dict[str, str]]:
    with (folder / "metrics.csv").open() as file:
        return [{k: v for k, v in row.items() if k not in TIMES} for row in csv.DictReader(file)]


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    root = tmp_path_factory.mktemp("whole")
    results = {name: convnet.train(out=root / name, **{**BASE, **extra})
               for name, extra in VARIANTS.items()}
    assert results["patience"].stopped_early == 5  # of 6 epochs: patience acts here
    return {name: result.path for name, result in results.items()}


@pytest.mark.parametrize("variant, point, count, code", [
    ("plain", "step", 3, -9),        # mid-epoch 2 (2 steps per epoch, 8 in all)
    ("plain", "epoch", 2, -9),       # just after epoch 2's checkpoint
    ("plain", "write", 4, -9),       # inside the 4th checkpoint write
    ("plain", "step", 8, -9),        # the last step of the last epoch
    ("plain", "SIGINT", 5, 130),
    ("plain", "SIGTERM", 4, 143),
    ("sampler", "step", 5, -9),
    ("patience", "step", 5, -9),
])
def test_interrupted_and_resumed_equals_never_interrupted(references, tmp_path, variant,
                                                          point, count, code):
    config = {**BASE, **VARIANTS[variant]}
    out = tmp_path / "run"
    child = subprocess.run([sys.executable, str(CHILD), str(out), point, str(count),
                            json.dumps(config)], capture_output=True, text=True, timeout=300)
    assert child.returncode == code, child.stderr[-2000:]
    if code > 0:
        assert child.stdout.startswith("interrupted at epoch ")
    with pytest.raises(RunError, match="is an unfinished run"):
        convnet.load(out)
    listed = {run.path: run for run in convnet.list_runs(tmp_path)}
    assert listed[out].state.startswith("unfinished at epoch ")
    convnet.train(resume=out)
    expected = load_file(references[variant] / "model.safetensors")
    found = load_file(out / "model.safetensors")
    assert expected.keys() == found.keys()
    assert all(torch.equal(expected[name], found[name]) for name in expected), variant
    assert _metrics(out) == _metrics(references[variant])
    assert not list(out.glob("checkpoint.*")) and not (out / ".convnet-training").exists()


def test_resume_refuses_changed_data_and_settings(references, tmp_path):
    out = tmp_path / "run"
    subprocess.run([sys.executable, str(CHILD), str(out), "step", "3", json.dumps(BASE)],
                   timeout=300, check=False)
    with pytest.raises(RunError, match=r"lr \(0.008 in the run, 0.1 now\)"):
        convnet.train(resume=out, lr=0.1)
    meta = next(out.glob("checkpoint.*.json"))
    saved = json.loads(meta.read_text())
    saved["info"]["fingerprint"] = "0" * 64  # as if the data had changed since
    meta.write_text(json.dumps(saved))
    with pytest.raises(RunError, match="is not what .* was trained on"):
        convnet.train(resume=out)
    with pytest.raises(RunError, match="is a finished run"):
        convnet.train(resume=references["plain"])
