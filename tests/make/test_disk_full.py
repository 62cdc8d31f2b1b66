"""No room to write (a full disk, a quota, a file-size limit): training stops with one line
that names the folder and the bytes needed, the previous checkpoint stays whole, and the
run resumes from it, once there is room, to the weights of a run never interrupted.

The checkpoint case makes the write really fail: the child process runs under a file-size
limit (``ulimit -f``; Python ignores SIGXFSZ, so the write returns EFBIG) that the
checkpoints inside epoch 1 fit under and the one at its end, which adds the best epoch's
weights, does not.
"""

from __future__ import annotations

import errno
import resource
import subprocess
import sys

import pytest

import convnet
from convnet import atomic
from convnet.errors import DiskFull
from convnet.runs import format as run_format
from resume_helpers import same_weights

CONFIG = dict(data="shapes:size=12,train=20,test=5", arch="conv6k3-bn-relu-conv8k3-relu-"
              "maxpool2-fc16-relu-fc", epochs=2, batch_size=16, augment="light", ema=0.9,
              seed=6, val_split=0.2, threads=1, lr=4e-3, flip=True)
FLAGS = ["--data", CONFIG["data"], "--arch", CONFIG["arch"], "--epochs", "2",
         "--batch-size", "16", "--augment", "light", "--ema", "0.9", "--seed", "6",
         "--val-split", "0.2", "--threads", "1", "--lr", "4e-3", "--flip", "--no-report",
         "--checkpoint-every", "1e-9"]


def _cli(args: list[str], limit: int | None = None) -> subprocess.CompletedProcess:
    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return subprocess.run([sys.executable, "-m", "convnet", *args], capture_output=True,
                          text=True, timeout=300, preexec_fn=None if limit is None else limited)


class _Stop(Exception):
    pass


class _StopAfterStep(convnet.callbacks.Callback):
    def on_step(self, epoch, step, loss, accuracy, images_per_s):
        raise _Stop  # after the step's checkpoint, which is written first


def test_a_checkpoint_with_no_room_stops_in_one_line_and_resumes_exactly(tmp_path):
    whole = convnet.train(out=tmp_path / "whole", **CONFIG, checkpoint_every=1e-9).path
    probe = tmp_path / "probe"  # the size of a checkpoint inside epoch 1
    with pytest.raises(_Stop):
        convnet.train(out=probe, **CONFIG, checkpoint_every=1e-9, callbacks=[_StopAfterStep()])
    inside = next(probe.glob("checkpoint.*.safetensors")).stat().st_size
    weights = (whole / "model.safetensors").stat().st_size
    limit = inside + weights // 2  # under it: epoch 1's steps; over it: epoch 1's end

    cut = tmp_path / "cut"
    stopped = _cli(["train", *FLAGS, "--out", str(cut)], limit)
    lines = stopped.stderr.strip().splitlines()
    assert stopped.returncode == 1 and len(lines) == 1 and "Traceback" not in stopped.stderr
    assert lines[0].startswith("error: Could not write checkpoint.") and str(cut) in lines[0]
    assert "bytes) and a file-size limit (ulimit -f) is below that" in lines[0]
    assert f"resume with: convnet train --resume {cut}" in lines[0]
    assert not list(cut.glob(".*.tmp")), "no temp file is left behind"
    listed = {run.path: run for run in convnet.list_runs(tmp_path)}
    assert listed[cut].state.startswith("unfinished at epoch 1 step ")  # the last one whole
    convnet.train(resume=cut)
    assert same_weights(whole, cut)  # the command line trains what the library does


def test_a_final_save_with_no_room_keeps_the_run_resumable(tmp_path, monkeypatch):
    whole = convnet.train(out=tmp_path / "whole", **CONFIG).path
    real = atomic._write_atomic  # under write_atomic, which turns ENOSPC into DiskFull

    def full(path, data):
        if path.name == run_format.WEIGHTS:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, data)
    monkeypatch.setattr(atomic, "_write_atomic", full)
    cut = tmp_path / "cut"
    with pytest.raises(DiskFull, match=r"Could not write model.safetensors in .*cut: it needs "
                       r".* bytes\) and no space left on device; .* free there\. Training "
                       r"stopped; free some space, then resume with"):
        convnet.train(out=cut, **CONFIG)
    monkeypatch.setattr(atomic, "_write_atomic", real)
    assert not (cut / "model.json").exists()
    convnet.train(resume=cut)
    assert same_weights(whole, cut) and convnet.load(cut)
