"""How many CPU threads a training run uses: every core it may use while it has them to
itself, fewer while other programs keep some of them busy.

Why: torch's OpenMP threads spin while they wait for each other. When another program holds
one of the cores, every parallel step waits for a thread that is not running, and training
slowed to 1-25% of its speed alone (bench/shared_cpu.py, bench/RESULTS.md); with one thread
per free core it kept ~65-75%. So by default (`threads=None`) the run measures, about twice a
second, how much CPU time other processes took on its cores (Linux ``/proc/stat`` minus its
own CPU time) and sets torch's thread count to the cores left over. A fixed ``threads``
turns that off; the thread count changes the order of floating-point sums, so runs are
bit-for-bit reproducible only at the same thread count.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch

from convnet.errors import ConvnetError
from convnet.training.callbacks import Callback, EpochStats

SAMPLE_SECONDS = 0.5  # how often the other programs' CPU use is measured
BUSY_CORES = 0.5  # other load below this is not named as the cause
COLLAPSE = 0.5  # an epoch slower than this fraction of the fastest one gets a notice
# epochs shorter than this are not weighed: a few photos' epoch of 0.4 s ran at half the
# rate of the one before with nothing else on the CPU (a pause of the validation pass,
# the allocator, a thread waking), so its rate says nothing of the machine
SHORT_EPOCH = 1.0


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity, capped by a cgroup CPU quota."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        os.cpu_count() or 1
    try:  # cgroup v2 "quota period", e.g. "200000 100000" for two cores' worth
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def check_threads(threads: int | None) -> None:
    """Raises ConvnetError when a fixed thread count exceeds the cores this process has."""
    cores = usable_cores()
    if threads is not None and threads > cores:
        raise ConvnetError(f"threads={threads} is more than the {cores} CPU core(s) this "
                           f"process may use; more threads than cores only wait for each "
                           f"other. Use threads={cores} or fewer, or leave it unset.")


class _OtherLoad:
    """CPU time that other processes took on our cores, in cores, since the last reading."""

    def __init__(self) -> None:
        self.cpus = {f"cpu{n}" for n in os.sched_getaffinity(0)}
        self.tick = os.sysconf("SC_CLK_TCK")
        self.last = self._read()

    def _read(self) -> tuple[float, float, float]:
        busy = 0
        with open("/proc/stat") as stat:
            for line in stat:
                name, *ticks = line.split()
                if name in self.cpus:  # idle and iowait are the 4th and 5th numbers
                    values = [int(value) for value in ticks]
                    busy += sum(values[:8]) - values[3] - values[4]
        return time.monotonic(), busy / self.tick, time.process_time()

    def cores(self) -> float:
        now = self._read()
        (wall, busy, own), self.last = (b - a for a, b in zip(self.last, now)), now
        return max(0.0, (busy - own) / max(wall, 1e-9))


class CpuThreads(Callback):
    """Sets torch's thread count for one run and restores the previous one afterwards.

    Use as a context manager around training, and pass it to the loop as a callback: at
    progress checkpoints at least `SAMPLE_SECONDS` apart it re-measures the other load.
    ``notify`` receives one line when an epoch ran at under half the speed of the fastest.
    """

    def __init__(self, threads: int | None, device: torch.device,
                 notify: Callable[[str], None] = lambda line: None, share: int = 1):
        check_threads(threads)
        self.fixed, self.notify = threads, notify
        # ``share`` processes of one run on this machine (torchrun) split its cores
        self.cores = max(1, usable_cores() // share)
        self.active = device.type == "cpu"
        self.adaptive = self.active and threads is None and Path("/proc/stat").exists()
        self.used: set[int] = set()
        self.fastest, self.warned, self.others = 0.0, False, 0.0

    def __enter__(self) -> CpuThreads:
        self.previous = torch.get_num_threads()
        if self.active:
            self._set(self.fixed or self.cores)
        if self.adaptive:
            self.load, self.sampled = _OtherLoad(), time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self.previous)

    def _set(self, threads: int) -> None:
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)
        self.used.add(threads)

    def on_step(self, epoch: int, step: int, loss: float, accuracy: float,
                images_per_s: float) -> None:
        if not self.adaptive or time.monotonic() - self.sampled < SAMPLE_SECONDS:
            return
        self.sampled = time.monotonic()
        self.others = self.load.cores()
        self._set(max(1, min(self.cores, round(self.cores - self.others))))

    def on_epoch_end(self, stats: EpochStats) -> None:
        rate = stats.images_per_s
        if stats.seconds < SHORT_EPOCH:
            return
        if self.active and not self.warned and rate < COLLAPSE * self.fastest:
            self.warned = True
            self.notify(f"Epoch {stats.epoch} trained at {rate:,.0f} images/s, "
                        f"{rate / self.fastest:.0%} of the fastest epoch: {self._cause()}")
        self.fastest = max(self.fastest, rate)

    def _cause(self) -> str:
        """Why an epoch slowed down, as far as was measured (never blame other programs
        that were not seen)."""
        threads = torch.get_num_threads()
        if self.adaptive and self.others >= BUSY_CORES:
            return (f"other programs are using this CPU (about {self.others:.1f} of "
                    f"{self.cores} cores). Training goes on with {threads} thread(s); stop "
                    "the other work for full speed.")
        if self.adaptive:
            return ("no other program was seen using the CPU, so the machine itself slowed "
                    "down (throttled, or short of memory). Training goes on.")
        return ("other work on this machine may be the cause (the CPU's load is not "
                "measured here). Training goes on.")

    def describe(self) -> dict[str, object]:
        """The setting and the thread counts used, for the run record."""
        return {"threads": self.fixed or "auto", "threads_used": sorted(self.used)}
