"""`convnet train --nproc N`: the same command under torchrun, on this machine."""

from __future__ import annotations

import socket
import subprocess
import sys


class Exit(Exception):
    """Leave with this exit code (that of a child process)."""

    def __init__(self, code: int):
        self.code = code


def torchrun_train(nproc: int, argv: list[str]) -> int:
    """Run `torchrun --nproc-per-node N -m convnet train ...` with ``argv`` (this
    invocation's arguments, ``train`` first) less ``--nproc``; a loopback rendezvous on a
    free port. Returns torchrun's exit code."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    rest, skip = [], False
    for item in argv[1:]:
        if skip:
            skip = False
        elif item == "--nproc":
            skip = True
        elif not item.startswith("--nproc="):
            rest.append(item)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc),
               "--master-addr", "127.0.0.1", "--master-port", str(port), "-m", "convnet",
               "train", *rest]
    return subprocess.run(command, check=False).returncode
