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
    # --standalone: a c10d rendezvous on localhost, on a port torchrun picks itself; "--"
    # ends torchrun's own options, or it reads --log (--log-dir's prefix) as its own
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", str(nproc), "-m", "convnet", "--", "train", *rest]
    return subprocess.run(command, check=False).returncode


def lost_peer_line(error: RuntimeError) -> str | None:
    """Under torchrun, the one line for a process whose partner died; None for any other
    error."""
    from convnet.training.distributed import lost_peer, world

    reason = lost_peer(error)
    if reason is None:
        return None
    here = world()
    return (f"error: process {here.rank} of {here.size} lost the others mid-run ({reason}): "
            "another process of this torchrun job stopped, and its output says why. "
            "torchrun --max-restarts K restarts every process from the run's last "
            "checkpoint.")
