"""The ``convnet`` process itself (``python -m convnet`` and the console script): the
command, then the way out."""

from __future__ import annotations

import atexit
import os
import sys

from convnet.cli import main


def run() -> None:
    """The ``convnet`` process: `main`, its exit handlers, then out without tearing the
    interpreter down, which took 0.9 s after a photo run here (torch's and onnxruntime's
    modules freed one by one) and counts against a ``--time`` budget. Under torchrun the
    usual exit, for the process group's own teardown."""
    code = main()
    if "TORCHELASTIC_RUN_ID" in os.environ:
        sys.exit(code)
    atexit._run_exitfuncs()  # what a normal exit runs first: loggers, trackers, pools
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
