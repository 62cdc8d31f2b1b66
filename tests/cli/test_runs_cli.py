"""`convnet runs`, `train --resume` and `--patience` from the command line."""

from __future__ import annotations

import json

import pytest

from conftest import TINY_ARCH, TINY_DATA
from convnet.cli import main


class _Crash(Exception):
    pass


def test_runs_lists_finished_and_unfinished_and_resume_finishes(tmp_path, monkeypatch,
                                                                capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["runs"]) == 1  # no runs/ folder yet
    assert "is not a folder of runs" in capsys.readouterr().err
    common = ["--data", TINY_DATA, "--arch", TINY_ARCH, "--batch-size", "16", "--no-report"]
    assert main(["train", *common, "--epochs", "1", "--out", "runs/done"]) == 0

    from convnet.make import resume as resume_module  # crash right after epoch 1's checkpoint
    real = resume_module.Checkpoints.on_epoch_end

    def crash(self, stats):
        real(self, stats)
        raise _Crash
    monkeypatch.setattr(resume_module.Checkpoints, "on_epoch_end", crash)
    with pytest.raises(_Crash):
        main(["train", *common, "--epochs", "3", "--out", "runs/cut"])
    monkeypatch.setattr(resume_module.Checkpoints, "on_epoch_end", real)
    capsys.readouterr()

    assert main(["runs"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if "runs/" in line]
    assert "finished" in rows[0] and "runs/done" in rows[0]
    assert "runs/cut" in rows[1] and "unfinished at epoch 1 (its end)" in rows[1]

    assert main(["train", "--resume", "runs/cut", "--lr", "0.5"]) == 1
    assert "would change its result: lr (0.00283 in the run, 0.5 now)" in \
        capsys.readouterr().err
    assert main(["train", "--resume", "runs/cut", "--no-report"]) == 0
    assert "note: resuming runs/cut at epoch 2, its start" in capsys.readouterr().out
    record = json.loads((tmp_path / "runs" / "cut" / "model.json").read_text())
    assert record["config"]["epochs"] == 3 and record["metrics"]["stopped_early"] is None


def test_patience_is_recorded_and_said(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", "shapes:size=12,train=40,test=10", "--arch",
                 "conv6k3-bn-relu-maxpool2-dropout0.3-fc16-relu-fc", "--batch-size", "16",
                 "--augment", "strong", "--ema", "0.9", "--seed", "5", "--val-split", "0.2",
                 "--epochs", "6", "--patience", "1", "--threads", "1", "--no-report",
                 "--lr", "8e-3", "--flip",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    record = json.loads((out / "model.json").read_text())
    assert record["metrics"]["stopped_early"] == 5 and record["config"]["patience"] == 1
    assert "stopped early after epoch 5: validation accuracy had not improved since" in printed
