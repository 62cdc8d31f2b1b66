"""`convnet train --nproc N`: the same command under torchrun, on this machine."""

from __future__ import annotations

import subprocess
import sys


class Exit(Exception):
    """Leave with this exit code (that of a child process)."""

    def __init__(self, code: int):
        self.code = code


def torchrun_train(nproc: int, argv: list[str]) -> int:
    """Run `torchrun --nproc-per-node N -m convnet train ...` with ``argv`` (this
    invocation's arguments, ``train`` first) less ``--nproc``. Returns torchrun's exit
    code."""
    rest, skip = [], False
    for item in argv[1:]:
        if skip:
            skip = False
        elif item == "--nproc":
            skip = True
        elif not item.startswith("--nproc="):
            rest.append(item)
    # --standalone: a c10d rendezvous on localhost, on a port torchrun picks itself
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", str(nproc), "-m", "convnet", "train", *rest]
    return subprocess.run(command, check=False).returncode
