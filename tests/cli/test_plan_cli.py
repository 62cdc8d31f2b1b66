"""`convnet plan` prints what training would do, as text or JSON, and refuses a bad budget
in one line."""

from __future__ import annotations

import json

from convnet.cli import main

DATA = "shapes:size=5,train=20,test=5"


def test_plan_prints_each_choice_and_marks_given_ones(capsys):
    assert main(["plan", "--data", DATA, "--epochs", "3"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("Plan: planned from 120 grayscale training images of 5 px, "
                              "6 classes: 5 px, 0 conv stages, 3 epochs")
    lines = {line.split()[0]: line for line in printed.splitlines()[1:] if line.strip()}
    assert "given" in lines["epochs"] and "given" not in lines["batch-size"]
    assert "too small for crops" in lines["augment"]


def test_plan_as_json_holds_the_fingerprint_and_choices(capsys):
    assert main(["plan", "--data", DATA, "--epochs", "3", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["fingerprint"]["classes"] == 6 and plan["fingerprint"]["channels"] == 1
    assert {choice["name"] for choice in plan["choices"]} >= {
        "image_size", "arch", "batch_size", "epochs", "augment", "lr", "ema", "flip"}


def test_a_budget_too_short_is_one_line(capsys):
    assert main(["plan", "--data", DATA, "--time", "2s"]) == 1
    error = capsys.readouterr().err
    assert error.strip() == ("error: --time 2s is under 5 seconds: too short to load data "
                             "and train. Give e.g. --time 1m.")


def test_a_report_that_would_break_the_budget_is_left_for_later(tmp_path, capsys):
    """--time is the whole command's: this test process started long before, so the budget
    is spent when training ends, and the report is named for later instead of drawn."""
    run = tmp_path / "run"
    assert main(["train", "--data", DATA, "--epochs", "1", "--time", "5s",
                 "--out", str(run)]) == 0
    said = capsys.readouterr().err
    assert "no report drawn, to hold --time 5s" in said and f"convnet report {run}" in said
    assert (run / "model.json").is_file() and not (run / "report.html").exists()
    assert main(["train", "--data", DATA, "--epochs", "1", "--out", str(tmp_path / "b")]) == 0
    assert (tmp_path / "b" / "report.html").is_file()  # no budget: drawn as always
