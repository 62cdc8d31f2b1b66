"""What checkpoints cost: the default digits run with its checkpoints (after every epoch,
and every `checkpoint_every` minutes inside one) against the same run with checkpoint
writing switched off in this process, interleaved round by round.

    python bench/checkpoint_cost.py --rounds 7

Time is `fit` (training, evaluation, saving), after the data is loaded; the checkpoint
share is (with − without) / without of the medians. Test accuracy is printed per run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import convnet
from benchdata import cpu_flags, machine
from convnet.make import fit, resume
from convnet.training.config import TrainConfig


def one(data, out: Path, checkpoints: bool) -> tuple[float, float, int, float]:
    """(fit seconds, test accuracy, checkpoint writes, seconds spent writing them)."""
    real = resume.Checkpoints.save
    writes = {"n": 0, "seconds": 0.0}

    def counted(self) -> None:
        started = time.perf_counter()
        real(self)
        writes["n"] += 1
        writes["seconds"] += time.perf_counter() - started
    resume.Checkpoints.save = counted if checkpoints else (lambda self: None)
    try:
        started = time.perf_counter()
        result = fit(data, TrainConfig(), out=out)
        return (time.perf_counter() - started, result.test.accuracy, writes["n"],
                writes["seconds"])
    finally:
        resume.Checkpoints.save = real


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(f"machine: {machine()}\ncpu flags: {cpu_flags()}")
    data = convnet.datasets.load("digits")
    work = Path(tempfile.mkdtemp(prefix="convnet-ckpt-"))
    one(data, work / "warm-up", True)  # the first run in a process is slower: not counted
    times: dict[bool, list[float]] = {True: [], False: []}
    shares = []
    for round_number in range(args.rounds):
        for checkpoints in ((True, False) if round_number % 2 == 0 else (False, True)):
            seconds, accuracy, writes, writing = one(
                data, work / f"{round_number}-{checkpoints}", checkpoints)
            times[checkpoints].append(seconds)
            if checkpoints:
                shares.append(writing / seconds)
            print(f"  checkpoints {'on ' if checkpoints else 'off'} {seconds:6.2f}s "
                  f"test {accuracy:.2%} ({writes} writes, {writing * 1000:.0f} ms)", flush=True)
    on, off = statistics.median(times[True]), statistics.median(times[False])
    print(f"median with {on:.2f}s, without {off:.2f}s: {(on - off) / off:+.1%}; time inside "
          f"the checkpoint writes: median {statistics.median(shares):.1%} of the run")


if __name__ == "__main__":
    main()
