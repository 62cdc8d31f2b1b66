"""A run interrupted anywhere and resumed ends with the same weights, bit for bit, and the
same metrics.csv (times aside) as a run never interrupted: SIGKILL mid-epoch, right after a
checkpoint, inside a checkpoint write and at the last step; SIGINT and SIGTERM; with an even
class sampler and with patience."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import convnet
from convnet.errors import RunError
from convnet.runs.folders import CLAIM, START
from resume_helpers import CHILD, metrics, record, run_child, same_weights

# dropout, EMA, strong augmentation, OneCycle and a validation split; one thread, so that
# every process sums in the same order; a checkpoint at every progress check
BASE = dict(data="shapes:size=12,train=40,test=10", arch="conv6k3-bn-relu-maxpool2-dropout0.3-"
            "fc16-relu-fc", epochs=4, batch_size=16, augment="strong", ema=0.9, seed=5,
            val_split=0.2, threads=1, checkpoint_every=1e-9, lr=8e-3, flip=True)
VARIANTS = {"plain": {}, "sampler": {"balance": "sampler"},
            "patience": {"patience": 1, "epochs": 6}}


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
    ("plain", "temp", 3, -9),        # inside the 3rd, its tensors in a temp file
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
    child = run_child(out, point, count, config)
    assert child.returncode == code, child.stderr[-2000:]
    if code > 0:
        assert child.stdout.startswith("interrupted at epoch ")
    with pytest.raises(RunError, match="is an unfinished run"):
        convnet.load(out)
    listed = {run.path: run for run in convnet.list_runs(tmp_path)}
    assert listed[out].state.startswith("unfinished at epoch ")
    convnet.train(resume=out)
    assert same_weights(references[variant], out), variant
    assert metrics(out) == metrics(references[variant])
    assert record(out) == record(references[variant])
    assert not list(out.glob("checkpoint.*")) and not (out / CLAIM).exists()
    assert not (out / START).exists() and not list(out.glob(".*.tmp"))


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


def test_a_run_killed_before_its_first_checkpoint_is_listed_and_starts_again(tmp_path):
    config = {**BASE, "checkpoint_every": 0}  # the first checkpoint: epoch 1's end
    whole = convnet.train(out=tmp_path / "whole", **config).path
    out = tmp_path / "run"
    assert run_child(out, "step", 1, config).returncode == -9
    assert sorted(p.name for p in out.iterdir()) == sorted([CLAIM, START])
    listed = {run.path: run for run in convnet.list_runs(tmp_path)}
    assert listed[out].state == "stopped before its first checkpoint"
    assert (listed[out].arch, listed[out].epochs) == (BASE["arch"], BASE["epochs"])
    with pytest.raises(RunError, match="stopped before its first checkpoint"):
        convnet.load(out)
    with pytest.raises(RunError, match=r"lr \(0.008 in the run, 0.1 now\)"):
        convnet.train(resume=out, lr=0.1)  # its settings hold, as for any resume
    convnet.train(resume=out)
    assert same_weights(whole, out) and record(out) == record(whole)
    assert not (out / START).exists() and not (out / CLAIM).exists()


def test_a_stale_claim_never_blocks_its_name(tmp_path):
    """A run killed before its first checkpoint holds nothing to keep: training into the
    same --out takes the folder over. A claim whose process id now belongs to another
    process (another start time) is as stale."""
    config = {**BASE, "checkpoint_every": 0, "epochs": 1}
    out = tmp_path / "run"
    assert run_child(out, "step", 1, config).returncode == -9
    assert convnet.train(out=out, **config).path == out and convnet.load(out)
    reused = tmp_path / "reused"
    assert run_child(reused, "step", 1, config).returncode == -9
    claim = json.loads((reused / CLAIM).read_text())
    (reused / CLAIM).write_text(json.dumps({**claim, "pid": os.getpid()}))  # alive, but
    assert convnet.train(out=reused, **config).path == reused  # it started later


def test_a_live_claim_blocks_resume_and_out_while_its_process_runs(tmp_path):
    config = {**BASE, "checkpoint_every": 0, "epochs": 1}
    out = tmp_path / "run"
    assert run_child(out, "step", 1, config).returncode == -9
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        claim = json.loads((out / CLAIM).read_text())
        stat = Path(f"/proc/{sleeper.pid}/stat").read_text().rsplit(")", 1)[1].split()
        (out / CLAIM).write_text(json.dumps({**claim, "pid": sleeper.pid,
                                             "started": stat[19]}))
        listed = {run.path: run for run in convnet.list_runs(tmp_path)}
        assert listed[out].state == "training, before its first checkpoint"
        with pytest.raises(RunError, match=f"still being trained by process {sleeper.pid}"):
            convnet.train(resume=out)
        with pytest.raises(RunError, match="already exists and is not empty"):
            convnet.train(out=out, **config)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert convnet.train(resume=out).path == out


def test_resume_of_a_missing_path_fails_and_creates_nothing(tmp_path):
    with pytest.raises(RunError, match="holds no checkpoint to resume from"):
        convnet.train(resume=tmp_path / "nowhere")
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_that_does_not_fit_its_network_lists_what_differs(tmp_path):
    out = tmp_path / "run"
    assert run_child(out, "step", 3, BASE).returncode == -9
    meta = next(out.glob("checkpoint.*.json"))
    saved = json.loads(meta.read_text())
    saved["info"]["config"]["arch"] = BASE["arch"].replace("conv6", "conv8")
    meta.write_text(json.dumps(saved))
    with pytest.raises(RunError, match=r"does not fit the network .*: body.0.weight "
                       r"\(6, 1, 3, 3\) saved, \(8, 1, 3, 3\) here"):
        convnet.train(resume=out)
