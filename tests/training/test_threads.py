"""The CPU thread policy: fixed counts are checked, the other programs' load is measured
against a real busy process, and the count follows that load and is restored afterwards."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import torch

from convnet.errors import ConvnetError
from convnet.training import threads as threads_module
from convnet.training.callbacks import EpochStats
from convnet.training.config import TrainConfig
from convnet.training.threads import CpuThreads, check_threads, usable_cores

CPU = torch.device("cpu")


def _stats(epoch: int, rate: float) -> EpochStats:
    return EpochStats(epoch, 1.0, 0.5, None, None, 1e-3, 1.0, rate)


def test_more_threads_than_cores_is_refused_with_the_core_count():
    cores = usable_cores()
    with pytest.raises(ConvnetError, match=rf"threads={cores + 1} is more than the {cores} "):
        check_threads(cores + 1)
    check_threads(cores)
    check_threads(None)


def test_zero_threads_is_refused_by_the_config():
    with pytest.raises(ConvnetError, match="threads"):
        TrainConfig(threads=0)


def test_a_fixed_count_is_set_inside_and_the_previous_one_restored():
    before = torch.get_num_threads()
    with CpuThreads(1, CPU) as policy:
        assert torch.get_num_threads() == 1
        policy.on_step(1, 1, 0.0, 0.0, 0.0)  # fixed: never re-measured
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    assert policy.describe() == {"threads": 1, "threads_used": [1]}


@pytest.mark.skipif(not threads_module.Path("/proc/stat").exists(), reason="Linux only")
def test_the_other_load_measures_a_busy_process():
    load = threads_module._OtherLoad()
    busy = subprocess.Popen([sys.executable, "-c",
                             "import time\nend = time.time() + 1.5\n"
                             "while time.time() < end: pass"])
    try:
        time.sleep(1.0)  # this process sleeps: the busy loop is the only load we add
        others = load.cores()
    finally:
        busy.kill()
        busy.wait()
    assert 0.5 < others <= usable_cores() + 0.1


def test_the_count_follows_the_load_of_other_programs(monkeypatch):
    readings = iter([1.0, 0.0])
    monkeypatch.setattr(threads_module, "SAMPLE_SECONDS", 0.0)
    monkeypatch.setattr(threads_module, "usable_cores", lambda: 2)
    with CpuThreads(None, CPU) as policy:
        if not policy.adaptive:
            pytest.skip("no /proc/stat here")
        monkeypatch.setattr(policy.load, "cores", lambda: next(readings))
        assert torch.get_num_threads() == 2
        policy.on_step(1, 1, 0.0, 0.0, 0.0)  # one core busy elsewhere
        assert torch.get_num_threads() == 1
        policy.on_step(1, 2, 0.0, 0.0, 0.0)  # free again
        assert torch.get_num_threads() == 2
    assert policy.describe() == {"threads": "auto", "threads_used": [1, 2]}


def test_a_collapsed_epoch_gets_one_notice():
    lines: list[str] = []
    policy = CpuThreads(1, CPU, notify=lines.append)
    with policy:
        for epoch, rate in enumerate([10_000, 9_000, 3_000, 2_000], start=1):
            policy.on_epoch_end(_stats(epoch, rate))
    assert len(lines) == 1
    assert lines[0].startswith("Epoch 3 trained at 3,000 images/s, 30% of the fastest")


def test_epochs_too_short_to_time_get_no_notice():
    """8 photos: an epoch of 0.4 s at half the last one's rate is noise, not the machine."""
    lines: list[str] = []
    with CpuThreads(1, CPU, notify=lines.append) as policy:
        for epoch, rate in enumerate([20, 18, 9, 8], start=1):
            policy.on_epoch_end(EpochStats(epoch, 1.0, 0.5, None, None, 1e-3, 0.4, rate))
    assert lines == []


@pytest.mark.parametrize("others, said", [
    (1.2, "other programs are using this CPU (about 1.2 of 2 cores)"),
    (0.0, "no other program was seen using the CPU"),  # never "about 0.0 of 2 cores"
])
def test_the_notice_names_other_programs_only_when_they_were_seen(monkeypatch, others, said):
    monkeypatch.setattr(threads_module, "usable_cores", lambda: 2)
    lines: list[str] = []
    with CpuThreads(None, CPU, notify=lines.append) as policy:
        if not policy.adaptive:
            pytest.skip("no /proc/stat here")
        policy.others = others
        for epoch, rate in enumerate([10_000, 3_000], start=1):
            policy.on_epoch_end(_stats(epoch, rate))
    assert len(lines) == 1 and said in lines[0]


def test_a_gpu_run_leaves_the_cpu_threads_alone():
    before = torch.get_num_threads()
    with CpuThreads(None, torch.device("cuda")) as policy:
        assert torch.get_num_threads() == before
    assert policy.describe()["threads_used"] == []
