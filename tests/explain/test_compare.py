"""`convnet compare`: the settings that differ, the scores from each run's own record, and
the curves in one PNG."""

from __future__ import annotations

import csv
import io
import json

import pytest

import convnet
from conftest import TINY_ARCH, TINY_DATA
from convnet.cli import main

pytest.importorskip("matplotlib")


def test_compare_lists_what_differs_and_each_runs_scores(tiny_run, tmp_path, capsys):
    other = tmp_path / "other"
    convnet.train(data=TINY_DATA, arch=TINY_ARCH, epochs=2, batch_size=16, lr=0.02, seed=5,
                  out=other)
    assert main(["compare", str(tiny_run), str(other), "--csv",
                 "--plot", str(tmp_path / "both.png")]) == 0
    rows = {row[0]: row[1:] for row in csv.reader(io.StringIO(capsys.readouterr().out))}
    assert set(rows) - {"", "test accuracy", "test loss", "best val accuracy", "best epoch",
                        "epochs run", "parameters", "epoch seconds"} == {"lr", "seed"}
    assert rows["seed"] == ["0", "5"] and rows["lr"][1] == "0.02"
    for folder, column in ((tiny_run, 0), (other, 1)):
        meta = json.loads((folder / "model.json").read_text())
        assert float(rows["test accuracy"][column]) == \
            round(meta["metrics"]["test"]["accuracy"], 4)
        assert rows["parameters"][column] == str(meta["params"])
    assert (tmp_path / "both.png").stat().st_size > 10_000


def test_compare_needs_two_finished_runs(tiny_run, tmp_path, capsys):
    assert main(["compare", str(tiny_run)]) == 1
    assert "at least two runs" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["compare", str(tiny_run), str(tmp_path / "empty")]) == 1
    assert "Traceback" not in capsys.readouterr().err
