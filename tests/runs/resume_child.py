"""A training run that stops itself at a chosen point, for the resume tests (run as a
child process: ``python resume_child.py OUT POINT N CONFIG_JSON``).

POINT: ``step`` (SIGKILL after the Nth step), ``epoch`` (SIGKILL right after epoch N's
checkpoint), ``write`` (SIGKILL inside the Nth checkpoint write, after its tensors and before
its JSON), ``SIGINT``/``SIGTERM`` (that signal after the Nth step: a clean stop).
"""

from __future__ import annotations

import json
import os
import signal
import sys

import convnet
from convnet.errors import Interrupted
from convnet.train import checkpoint


class Stopper(convnet.callbacks.Callback):
    def __init__(self, point: str, count: int):
        self.point, self.count, self.steps = point, count, 0

    def on_step(self, epoch, step, loss, accuracy, images_per_s):
        self.steps += 1
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


def main() -> int:
    out, point, count, config = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    if point == "write":
        _kill_inside_write(count)
    try:
        convnet.train(out=out, callbacks=[Stopper(point, count)], **json.loads(config))
    except Interrupted as stop:
        print(stop, flush=True)
        return 143 if stop.signal_name == "SIGTERM" else 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
