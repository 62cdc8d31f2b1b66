"""The job queue: one training process at a time per machine, each its own process so
the server stays responsive, the queue and its states kept in the workspace's files.

A job runs as `convnet.studio.worker` in a child process that gets SIGTERM when the
studio dies (Linux), so it stops at a checkpoint. A studio that starts again puts a job
it finds ``running`` back in the queue, and the worker resumes its run from there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from filelock import FileLock, Timeout

from convnet.data.cache import cache_dir
from convnet.processes import alive, started
from convnet.studio.workspace import Job, Workspace

POLL = 0.2  # seconds between looks at the child and the job file
WAIT_OLD = 60.0  # seconds a restarted studio waits for an old worker to leave


def _parent_death_signal() -> None:
    """In the child, before exec: SIGTERM when the studio process dies (Linux only)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _alive(job: Job) -> bool:
    """Whether the job's training process still runs (not a later one with its id)."""
    return alive(job.pid, job.pid_started)


class Runner:
    """Runs the workspace's queued jobs in order, one at a time, in a background thread."""

    def __init__(self, space: Workspace):
        self.space = space
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.child: subprocess.Popen | None = None
        self.lock = FileLock(str(cache_dir("locks") / "studio-jobs.lock"))
        self.thread = threading.Thread(target=self._loop, name="studio-jobs", daemon=True)

    def start(self) -> None:
        self._recover()
        self.thread.start()

    def _recover(self) -> None:
        """Jobs left ``running`` by a studio that stopped go back in the queue."""
        for job in self.space.jobs():
            if job.state == "running":
                deadline = time.monotonic() + WAIT_OLD
                while _alive(job) and time.monotonic() < deadline:
                    time.sleep(POLL)  # it is writing its checkpoint
                job.state, job.pid, job.pid_started = ("cancelled" if job.cancel else "queued"), \
                    None, None
                self.space.save(job)

    def submit(self) -> None:
        self.wake.set()

    def cancel(self, id: str) -> Job:
        """Cancel a queued job, or stop a running one at its next checkpoint."""
        job = self.space.job(id)
        if job.state == "queued":
            job.state, job.ended = "cancelled", time.time()
        elif job.state == "running":
            job.cancel = True
            if _alive(job):
                os.kill(job.pid, signal.SIGTERM)
        self.space.save(job)
        return job

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the loop; a running job stops at a checkpoint and resumes next start."""
        self.stopping.set()
        self.wake.set()
        child = self.child
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)
        self.thread.join(timeout)

    def _next(self) -> Job | None:
        queued = [job for job in self.space.jobs() if job.state == "queued"]
        return min(queued, key=lambda job: job.created) if queued else None

    def _loop(self) -> None:
        while not self.stopping.is_set():
            job = self._next()
            if job is None:
                self.wake.wait(1.0)
                self.wake.clear()
                continue
            try:
                with self.lock.acquire(timeout=1.0):  # one job per machine
                    self._run(job)
            except Timeout:
                self.wake.wait(1.0)

    def _run(self, job: Job) -> None:
        log = self.space.root / "jobs" / f"{job.id}.log"
        with log.open("ab") as errors:
            self.child = subprocess.Popen(
                [sys.executable, "-m", "convnet.studio.worker", str(self.space.root), job.id],
                stdout=subprocess.DEVNULL, stderr=errors, preexec_fn=_parent_death_signal)
        job.state, job.started, job.pid, job.error = "running", time.time(), self.child.pid, None
        job.pid_started = started(self.child.pid)
        self.space.save(job)
        while self.child.poll() is None:
            time.sleep(POLL)
        code, self.child = self.child.returncode, None
        job = self.space.job(job.id)  # the cancel flag may have been set meanwhile
        if code == 0:
            job.state = "finished"
        elif code in (143, -signal.SIGTERM) and self.stopping.is_set() and not job.cancel:
            job.state = "queued"  # the studio is stopping: resumed when it starts again
        elif code in (143, -signal.SIGTERM):
            job.state = "cancelled"
        else:
            job.state, job.error = "failed", _last_line(log)
        job.ended, job.pid, job.pid_started = time.time(), None, None
        self.space.save(job)


def _last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "the training process ended without a message"
