"""The command line at the edges: every mistake is one line and a non-zero exit, checked
before anything is written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from PIL import Image

import convnet
from convnet.cli import main

FORMAT1 = Path(__file__).resolve().parent.parent / "fixtures" / "run-format1"


def _one_line_error(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def test_bare_convnet_shows_the_help_and_succeeds(capsys):
    assert main([]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("Usage: convnet") and "train" in printed


def test_swapped_predict_arguments_say_the_right_order(tmp_path, capsys):
    image = tmp_path / "seven.png"
    Image.new("L", (12, 12)).save(image)
    assert main(["predict", str(image), str(FORMAT1)]) == 1
    line = _one_line_error(capsys)
    assert "is an image and" in line and "the run comes first" in line
    assert main(["evaluate", str(image)]) == 1
    assert "is a file, not a run folder" in _one_line_error(capsys)


def test_json_and_csv_together_are_refused(tmp_path, capsys):
    image = tmp_path / "seven.png"
    Image.new("L", (12, 12)).save(image)
    assert main(["predict", str(FORMAT1), str(image), "--json", "--csv"]) == 2
    assert "give one of them" in _one_line_error(capsys)


def test_check_data_on_a_missing_path(capsys):
    assert main(["check-data", "/no/such/photos"]) == 1
    assert "/no/such/photos does not exist" in _one_line_error(capsys)


def test_check_data_takes_every_form_train_takes(tmp_path, capsys):
    idx = Path(convnet.data.__file__).parent / "digits"  # the official MNIST files
    folder = shutil.copytree(idx, tmp_path / "mnist")
    assert main(["check-data", str(folder), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    train, test = facts["counts"]["train"], facts["counts"]["test"]
    assert facts["classes"] == [str(n) for n in range(10)]
    assert (sum(train), sum(test)) == (8000, 2000)
    digits = convnet.data.load(str(folder))  # what train would read, counted by torch
    assert train == torch.bincount(digits.train.labels, minlength=10).tolist()
    assert main(["check-data", "x-or-not-x:size=12,train=10,test=4"]) == 0
    printed = capsys.readouterr().out
    assert "2 classes, images 12×12×1" in printed and "No problems found" in printed


def test_report_without_metrics_csv(tmp_path, capsys):
    run = shutil.copytree(FORMAT1, tmp_path / "run")
    (run / "metrics.csv").unlink()
    assert main(["report", str(run)]) == 1
    assert "metrics.csv is missing" in _one_line_error(capsys)


def test_explain_checks_the_class_before_writing_anything(tmp_path, capsys):
    image = tmp_path / "x.png"
    Image.new("L", (12, 12)).save(image)
    out = tmp_path / "pictures"
    assert main(["explain", str(FORMAT1), str(image), "--class", "dog", "--out", str(out)]) == 1
    assert "Unknown class 'dog'" in _one_line_error(capsys)
    assert not out.exists() or list(out.iterdir()) == []


def test_a_diverging_run_is_one_line_naming_the_flag(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", "x-or-not-x:size=12,train=20,test=5", "--arch",
                 "conv4k3-relu-fc", "--epochs", "2", "--batch-size", "8", "--lr", "1e9",
                 "--ema", "0", "--no-report", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: The training loss became ")
    assert "Try a smaller lr (e.g. --lr " in err
    assert not out.exists()


def test_out_is_checked_before_the_data_is_loaded(tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    # the data does not exist either: the out problem must be the one reported, first
    assert main(["train", "--data", "/no/such/data", "--out", str(a_file)]) == 1
    assert f"--out {a_file} is a file; a run is a folder" in _one_line_error(capsys)
    assert main(["train", "--data", "/no/such/data", "--out", str(a_file / "run")]) == 1
    assert "is a file, not a folder" in _one_line_error(capsys)
    taken = tmp_path / "taken"
    (taken / "x").mkdir(parents=True)
    assert main(["train", "--data", "/no/such/data", "--out", str(taken)]) == 1
    assert "already exists and is not empty" in _one_line_error(capsys)
    assert a_file.read_text() == "not a folder" and (taken / "x").is_dir()
