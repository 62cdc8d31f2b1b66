"""A process named by id and start time: alive while it runs, gone once it ends, and a
later process given the same id is not taken for it (the run folders' claims and the
studio's jobs both ask this)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from convnet.processes import alive, started


def test_this_process_is_alive_and_an_ended_one_is_not():
    assert alive(os.getpid(), started(os.getpid()))
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not alive(child.pid)
    assert not alive(None) and not alive(0)


@pytest.mark.skipif(started(os.getpid()) is None, reason="no /proc to read start times from")
def test_a_reused_id_is_not_the_process_that_wrote_it():
    now = started(os.getpid())
    assert not alive(os.getpid(), str(int(now) - 1))  # the id, another start: reused
    assert alive(os.getpid(), None)  # no start recorded (older files): the id decides


def test_a_studio_job_whose_id_was_reused_is_not_waited_for(tmp_path):
    from convnet.studio.runner import _alive
    from convnet.studio.workspace import Job

    job = Job("job-0001", "data", {}, pid=os.getpid(), pid_started=started(os.getpid()))
    assert _alive(job)
    if job.pid_started is not None:
        job.pid_started = str(int(job.pid_started) - 1)
        assert not _alive(job)
