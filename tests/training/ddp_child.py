"""A training run for torchrun in the restart test: ``python ddp_child.py OUT KILL OPTIONS``.
With KILL=1, rank 0 kills itself (SIGKILL) in the middle of epoch 2 on the first attempt
only; torchrun's --max-restarts then starts every worker again."""

from __future__ import annotations

import json
import os
import signal
import sys

import convnet


class Killer(convnet.callbacks.Callback):
    def on_step(self, epoch, step, loss, accuracy, images_per_s):
        first_attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"
        if first_attempt and epoch == 2 and step == 2:
            os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    from convnet.cli.process import finish

    out, kill, options = sys.argv[1], sys.argv[2] == "1", json.loads(sys.argv[3])
    convnet.train(out=out, callbacks=[Killer()] if kill else [], **options)
    # as the convnet command ends under torchrun: the ranks leave together, and the
    # process without the interpreter's teardown, where gloo can abort
    finish(0)
