"""The ``convnet`` process itself (``python -m convnet`` and the console script): the
command, then the way out."""

from __future__ import annotations

import atexit
import os
import sys
from typing import NoReturn

from convnet.cli import main


def run() -> None:
    """The ``convnet`` process: `main`, its exit handlers, then out without tearing the
    interpreter down, which took 0.9 s after a photo run here (torch's and onnxruntime's
    modules freed one by one) and counts against a ``--time`` budget. Under torchrun the
    ranks first leave their process group together (`leave_together`): gloo's threads
    could abort a rank in that teardown."""
    finish(main())


def finish(code: int) -> NoReturn:
    """End this process with ``code``: under torchrun its rank first leaves the process
    group with the others (`leave_together`); then the exit handlers, and out without
    the interpreter's teardown. A script that trains under torchrun can end the same way."""
    if "TORCHELASTIC_RUN_ID" in os.environ:
        from convnet.training.distributed import leave_together

        leave_together(code == 0)
    atexit._run_exitfuncs()  # what a normal exit runs first: loggers, trackers, pools
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
