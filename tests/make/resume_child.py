"""A training run that stops itself at a chosen point, for the resume tests (run as a
child process: ``python resume_child.py OUT POINT N CONFIG_JSON``).

POINT: ``step`` (SIGKILL after the Nth step), ``epoch`` (SIGKILL right after epoch N's
checkpoint), ``write`` (SIGKILL inside the Nth checkpoint write, after its tensors and before
its JSON), ``temp`` (SIGKILL inside the Nth checkpoint write, its tensors in a temp file
not yet renamed), ``SIGINT``/``SIGTERM`` (that signal after the Nth step: a clean stop).

The torch thread counts the child trained with are written to ``OUT.threads`` (JSON) before
it stops, so that a test of automatic threads can tell whether the count stayed the same.
"""

from __future__ import annotations

import json
import os
import signal
import sys

import torch

import convnet
from convnet import atomic
from convnet.errors import Interrupted
from convnet.training import checkpoint


class Stopper(convnet.callbacks.Callback):
    def __init__(self, out: str, point: str, count: int):
        self.out, self.point, self.count, self.steps = out, point, count, 0
        self.threads: set[int] = set()

    def on_step(self, epoch, step, loss, accuracy, images_per_s):
        self.steps += 1
        self.threads.add(torch.get_num_threads())
        with open(f"{self.out}.threads", "w") as file:
            json.dump(sorted(self.threads), file)
        if self.steps == self.count and self.point == "step":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.steps == self.count and self.point in ("SIGINT", "SIGTERM"):
            os.kill(os.getpid(), getattr(signal, self.point))

    def on_epoch_end(self, stats):  # runs after the run's own checkpoint writer
        if self.point == "epoch" and stats.epoch == self.count:
            os.kill(os.getpid(), signal.SIGKILL)


def _kill_inside_write(count: int) -> None:
    real, calls = checkpoint.write_atomic, {"n": 0}

    def write(path, data):
        real(path, data)
        if path.name.endswith(".safetensors"):
            calls["n"] += 1
            if calls["n"] == count:  # the tensors are down, the JSON is not
                os.kill(os.getpid(), signal.SIGKILL)
    checkpoint.write_atomic = write


def _kill_before_rename(count: int) -> None:
    real, calls = atomic.os.replace, {"n": 0}

    def replace(source, target):
        if str(target).endswith(".safetensors") and "checkpoint." in str(target):
            calls["n"] += 1
            if calls["n"] == count:  # the temp file is whole, the rename not done
                os.kill(os.getpid(), signal.SIGKILL)
        real(source, target)
    atomic.os.replace = replace


def main() -> int:
    out, point, count, config = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    if point == "write":
        _kill_inside_write(count)
    if point == "temp":
        _kill_before_rename(count)
    try:
        convnet.train(out=out, callbacks=[Stopper(out, point, count)], **json.loads(config))
    except Interrupted as stop:
        print(stop, flush=True)
        return 143 if stop.signal_name == "SIGTERM" else 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
