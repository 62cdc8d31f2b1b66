"""The same `convnet train` under torchrun (gloo on CPU, 127.0.0.1 only, bounded in time):
two processes, each taking B of a global batch of 2B, end one epoch with the weights of one
process with batch 2B on the same global order, and only rank 0 writes the run."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

import convnet
from conftest import free_port

# no batch norm, no dropout, no augmentation, fp32: the two runs must see the same numbers
OPTIONS = {"data": "x-or-not-x:size=12,train=80,test=10",
           "arch": "conv4k3-relu-maxpool2-fc8-relu-fc", "epochs": 1, "augment": "none",
           "lr": 0.01, "seed": 3, "val_split": 0.1, "precision": "fp32"}


def _flags(options: dict) -> list[str]:
    return [item for key, value in options.items()
            for item in (f"--{key.replace('_', '-')}", str(value))]


def _two_ranks(options: dict, out, port: int | str) -> None:
    """`convnet train` with ``options`` under torchrun, two processes, writing ``out``."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
               "--master-addr", "127.0.0.1", "--master-port", str(port),
               "-m", "convnet", "--", "train", *_flags(options), "--batch-size", "16",
               "--no-report", "--out", str(out)]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300,
                              cwd=out.parent)
    assert finished.returncode == 0, finished.stderr[-3000:]


def _assert_close_weights(first, second, atol: float) -> None:
    one, two = load_file(first / "model.safetensors"), load_file(second / "model.safetensors")
    assert one.keys() == two.keys()
    for name in one:
        assert torch.allclose(one[name], two[name], atol=atol), \
            (name, float((one[name] - two[name]).abs().max()))


def test_two_ranks_sharing_a_batch_equal_one_process(tmp_path):
    single = convnet.train(out=tmp_path / "one", batch_size=16, threads=1, **OPTIONS).path
    _two_ranks(OPTIONS, tmp_path / "two", 29531)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]  # rank 0 wrote
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == \
        ["metrics.csv", "model.json", "model.safetensors"]
    _assert_close_weights(single, tmp_path / "two", atol=1e-6)
    record = convnet.load(tmp_path / "two").record
    assert record.speed["processes"] == 2


def test_nproc_starts_torchrun_on_this_machine(tmp_path, monkeypatch):
    from convnet.cli import main

    monkeypatch.chdir(tmp_path)
    code = main(["train", "--nproc", "2", *_flags({**OPTIONS, "epochs": 2}),
                 "--batch-size", "16", "--no-report", "--out", "run"])
    assert code == 0
    record = convnet.load(tmp_path / "run").record
    assert record.speed["processes"] == 2 and record.config.batch_size == 16


def test_two_nodes_on_loopback_train_together(tmp_path):
    
    port = free_port()
    nodes = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node",
         "1", "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}",
         "--rdzv-id", "convnet-test", "--local-addr", "127.0.0.1",
         "-m", "convnet", "train", *_flags(OPTIONS), "--batch-size", "16", "--no-report",
         "--out", str(tmp_path / "run")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)]
    outputs = [node.communicate(timeout=300) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], [err[-2000:] for _, err in outputs]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    assert convnet.load(tmp_path / "run").record.speed["processes"] == 2


def _torchrun_child(tmp_path, out: str, kill: bool, restarts: int) -> subprocess.CompletedProcess:
    import json
    from pathlib import Path

    child = Path(__file__).with_name("ddp_child.py")
    options = {**OPTIONS, "epochs": 3, "batch_size": 16, "threads": 1}
    return subprocess.run(
        # --standalone: a c10d rendezvous on localhost, with a new round per restart
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
         "2", "--max-restarts", str(restarts), str(child), out, "1" if kill else "0",
         json.dumps(options)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> dict[str, torch.Tensor]:
    """The weights of the 2-rank run below, never interrupted."""
    where = tmp_path_factory.mktemp("whole")
    done = _torchrun_child(where, str(where / "run"), kill=False, restarts=0)
    assert done.returncode == 0, done.stderr[-2000:]
    return load_file(where / "run" / "model.safetensors")


def _same(weights: dict[str, torch.Tensor], run) -> bool:
    other = load_file(run / "model.safetensors")
    return all(torch.equal(weights[name], other[name]) for name in weights)


def test_a_killed_worker_is_restarted_and_the_run_ends_as_if_never_killed(tmp_path, whole):
    killed = _torchrun_child(tmp_path, str(tmp_path / "killed"), kill=True, restarts=1)
    assert killed.returncode == 0, killed.stderr[-2000:]
    assert "exitcode: -9" in killed.stderr  # torchrun saw the worker die, then restarted it
    assert _same(whole, tmp_path / "killed")


def test_a_killed_worker_without_restarts_stops_every_rank_and_resume_goes_on(tmp_path,
                                                                             whole):
    killed = _torchrun_child(tmp_path, str(tmp_path / "killed"), kill=True, restarts=0)
    assert killed.returncode != 0 and "exitcode: -9" in killed.stderr
    assert not (tmp_path / "killed" / "model.json").exists()
    # the same two processes go on from the checkpoint with --resume
    resumed = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
         "2", "-m", "convnet", "train", "--resume", str(tmp_path / "killed"), "--no-report"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming" in resumed.stdout and _same(whole, tmp_path / "killed")


def test_a_checkpoint_goes_on_only_with_the_processes_that_wrote_it(monkeypatch, tmp_path):
    from convnet.errors import ConvnetError
    from convnet.make.resume import check_processes

    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ConvnetError, match="checkpointed by 2 process.*--nproc-per-node 2"):
        check_processes(tmp_path, {"processes": 2})
    check_processes(tmp_path, {"processes": 3})


def test_predict_under_torchrun_prints_one_csv_in_input_order(tiny_run, tmp_path):
    from PIL import Image

    for index in range(7):  # odd: the two processes take 3 and 4 files
        Image.new("L", (12, 12), 30 * index).save(tmp_path / f"{index}.png")
    files = [str(tmp_path / f"{index}.png") for index in range(7)]
    single = subprocess.run([sys.executable, "-m", "convnet", "predict", str(tiny_run), *files,
                             "--csv"], capture_output=True, text=True, timeout=120)
    both = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node", "2", "-m", "convnet", "predict", str(tiny_run),
                           *files, "--csv"], capture_output=True, text=True, timeout=300)
    assert single.returncode == both.returncode == 0, both.stderr[-2000:]
    assert both.stdout == single.stdout and len(single.stdout.splitlines()) == 8


def test_sync_bn_is_refused_on_a_cpu(capsys):
    from convnet.cli import main

    assert main(["train", "--sync-bn", "--device", "cpu", "--epochs", "1"]) == 1
    assert "--sync-bn needs GPUs" in capsys.readouterr().err


def test_a_rank_whose_partner_died_says_so_in_one_line(monkeypatch, capsys):
    from convnet import make as runs
    from convnet.cli import main

    def partner_died(*args, **kwargs):
        raise RuntimeError("[third_party/gloo/gloo/transport/tcp/pair.cc:537] Read error "
                           "[127.0.0.1]:20374: Connection reset by peer. This is typically "
                           "caused by a remote worker hanging.")
    monkeypatch.setattr(runs, "train", partner_died)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert main(["train", "--epochs", "1"]) == 1
    printed = capsys.readouterr().err.strip()
    assert printed.startswith("error: process 1 of 2 lost the others mid-run (Read error "
                              "[127.0.0.1]:20374: Connection reset by peer)")
    assert "--max-restarts" in printed and len(printed.splitlines()) == 1
    monkeypatch.delenv("WORLD_SIZE")  # one process: the same error is a bug, not a peer
    with pytest.raises(RuntimeError, match="Connection reset by peer"):
        main(["train", "--epochs", "1"])


def test_a_fine_tune_under_torchrun_equals_one_process(tmp_path):
    base = convnet.train(out=tmp_path / "base", batch_size=16, threads=1, **OPTIONS).path
    # other images, the network following from init: a head fitted alone, then all of it
    options = {**OPTIONS, "data": "x-or-not-x:size=12,train=80,test=10,seed=5",
               "init": str(base), "freeze_epochs": 3}
    options.pop("arch")
    single = convnet.train(out=tmp_path / "one", batch_size=16, threads=1, **options).path
    _two_ranks(options, tmp_path / "two", free_port())
    _assert_close_weights(single, tmp_path / "two", atol=1e-5)
    record = convnet.load(tmp_path / "two").record
    assert record.speed["processes"] == 2 and record.config.init == str(base)


def test_under_torchrun_only_rank_0_logs_to_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _two_ranks({**OPTIONS, "log": "tensorboard"}, tmp_path / "two", free_port())
    logs = tmp_path / "two" / "tensorboard"
    assert len(list(logs.iterdir())) == 1  # one event file: one writer
    events = EventAccumulator(str(logs))
    events.Reload()
    assert [e.step for e in events.Scalars("loss/train")] == \
        list(range(1, OPTIONS["epochs"] + 1))


def test_a_time_budget_under_torchrun_ends_with_one_total_on_every_rank(tmp_path):
    """Each rank times its own epochs and takes rank 0's total (`Budget`): the run ends
    within its 300 s bound, with the epochs rank 0 wrote."""
    options = {key: value for key, value in OPTIONS.items() if key != "epochs"}
    _two_ranks({**options, "time": "8s"}, tmp_path / "two", free_port())
    record = convnet.load(tmp_path / "two").record
    rows = (tmp_path / "two" / "metrics.csv").read_text().splitlines()[1:]
    assert record.speed["processes"] == 2 and len(rows) >= 1
    assert record.config.time == "8s"
