"""The `convnet` command end to end on tiny data, and its one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image

import convnet
from conftest import TINY_ARCH, TINY_DATA
from convnet.cli import main


def test_train_evaluate_predict_summary(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", TINY_DATA, "--arch", TINY_ARCH, "--epochs", "1",
                 "--batch-size", "16", "--out", str(run)]) == 0
    printed = capsys.readouterr().out
    assert "test accuracy" in printed and str(run) in printed
    # not a terminal: one plain line per epoch, the closing line unwrapped
    assert "\nepoch 1/1: loss " in printed
    assert any(line.startswith("★ best epoch 1 kept") and line.endswith(str(run))
               for line in printed.splitlines())

    assert main(["evaluate", str(run)]) == 0
    printed = capsys.readouterr().out
    assert "accuracy" in printed and "Confusion matrix" in printed and "not-x" in printed

    assert main(["evaluate", str(run), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["count"] == 20 and set(scores["per_class"]) == {"x", "not-x"}

    image = tmp_path / "img.png"
    Image.new("L", (12, 12)).save(image)
    assert main(["predict", str(run), str(image)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{image}: ")
    pairs = [part.split(" ", 1) for part in line.removeprefix(f"{image}: ").split(", ")]
    shown = {name: float(p) for p, name in pairs}  # "0.73 not-x, 0.27 x"
    assert set(shown) == {"x", "not-x"} and sum(shown.values()) == pytest.approx(1, abs=0.011)
    expected = convnet.load(run).predict_files([image])[0].probabilities
    assert list(shown) == list(expected)  # most likely first
    assert all(shown[name] == pytest.approx(expected[name], abs=0.005) for name in shown)

    assert main(["predict", str(run), str(image), "--csv"]) == 0
    header, row = capsys.readouterr().out.strip().splitlines()
    assert header == "file,prediction,probability,x,not-x,error"
    assert row.startswith(str(image))

    assert main(["summary", str(run)]) == 0
    assert "conv4k3" in capsys.readouterr().out


def test_predict_with_one_bad_file_still_predicts_the_others(tiny_run, tmp_path, capsys):
    good, bad = tmp_path / "a.png", tmp_path / "b.png"
    Image.new("L", (12, 12)).save(good)
    bad.write_bytes(b"")
    assert main(["predict", str(tiny_run), str(tmp_path), "--json"]) == 1
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.strip().splitlines()]
    assert rows[0]["error"] is None and rows[1]["error"]
    assert "1 of 2 file(s) could not be predicted" in captured.err


def test_summary_prints_the_texts_comparison(capsys):
    assert main(["summary", "conv8k3-relu-fc", "--input", "50x50x3", "--classes", "2"]) == 0
    assert "15,004,000 weights" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["train", "--data", "nope"], "error: --data must be a built-in dataset"),
    (["train", "--data", "/no/such/dir"], "error: --data /no/such/dir does not exist"),
    (["train", "--arch", "conv8k3-maxpol2"], "error: Spec token 2 'maxpol2' is not a layer"),
    (["train", "--arch", "conv8k9-maxpool4-conv8k9"], "does not fit its input"),
    (["train", "--epochs", "0"],
     "error: --epochs 0 trains only a new head on trained features, so it needs weights to "
     "start from, and these are random. Give --init imagenet (or a run)"),
    (["train", "--epochs", "-2"],
     "error: --epochs must be a positive integer. Received: --epochs -2."),
    (["train", "--batch-size", "-1"],
     "error: --batch-size must be a positive integer. Received: --batch-size -1."),
    (["train", "--epochs", "many"], "error: Invalid value for '--epochs': 'many' is not a"),
    (["train", "--threads", "999"], "error: --threads 999 is more than the "),
    (["train", "--shift", "1000000"],
     "error: --shift 1000000 pixels is more than the 28×28 images allow; use --shift 14 "),
    (["train", "--cutout", "29"], "error: --cutout 29 pixels is more than the 28×28 images"),
    (["train", "--epochs", "10" + "0" * 20], "error: --epochs 1000000000000000000000 is more "
                                             "than 100,000;"),
    (["train", "--arch", "lenett"], "error: --arch lenett is neither a preset nor a spec. "
                                    "Did you mean 'lenet'?"),
    (["evaluate", "/no/run"], "error: Run folder '/no/run' does not exist"),
    (["summary", "conv8k3", "--input", "28by28"], "error: The input shape must be HxWxC"),
])
def test_bad_input_is_one_line(argv, message, capsys):
    assert main(argv) != 0
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], captured.err
    assert "Traceback" not in captured.err + captured.out


def test_the_installed_command_exits_non_zero_without_a_traceback(tmp_path):
    done = subprocess.run([sys.executable, "-m", "convnet", "predict", str(tmp_path),
                           "x.png"], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.startswith("error: Run folder") and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("argv, code, said", [(["--version"], 0, "version"),
                                              (["train", "--epochs", "-1"], 1, "--epochs")])
def test_the_command_leaves_with_mains_code_its_output_and_exit_handlers(argv, code, said):
    """`run` skips the interpreter's teardown (os._exit): the exit code, the flushed output
    and every exit handler must still be there."""
    script = ("import atexit, sys\n"
              "from convnet.cli.process import run\n"
              "atexit.register(lambda: print('handlers ran'))\n"
              f"sys.argv = ['convnet', *{argv!r}]\n"
              "run()\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == code
    assert said in done.stdout + done.stderr and "handlers ran" in done.stdout
