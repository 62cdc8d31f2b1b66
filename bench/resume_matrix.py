"""Is resume exact? Every preset × kill point × precision, and the issue-23 commands.

Three parts, each run killed and resumed, then compared with a run never interrupted
(model.safetensors bit for bit; model.json and metrics.csv times aside):

1. matrix: each CPU preset on CIFAR photos (3 classes, 20 each, trained at 32 px), fp32 and
   bf16, killed at seven points by tests/runs/resume_child.py (mid-epoch, right after a
   checkpoint, inside a checkpoint write, with the tensors in a temp file, at the last
   step, SIGINT, SIGTERM);
2. digits: the commands of issue 23 (`convnet train --epochs 4 --seed 3 --threads 1`),
   SIGKILLed from outside during epoch 3 and during the last epoch;
3. photos: a 2-class folder of CIFAR cats and dogs upscaled to photos (shorter side
   120-400 px) under the default plan (no options but --seed and --threads), killed
   during epoch 3 and during its last epoch.

    python bench/resume_matrix.py [--part matrix|digits|photos ...] [--root DIR]

Prints one markdown table per part and appends the rows to bench/resume_matrix.jsonl.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from benchdata import cpu_flags, machine
from zoo_data import Entry, materialize

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from resume_helpers import metrics, record, run_child, same_weights  # noqa: E402

PRESETS = ["default", "small", "lenet", "tinyvgg", "keras-mnist", "cifar-fast-cpu"]
# 48 training images after validation, batch 16: 3 steps an epoch, 9 in all
POINTS = [("mid-epoch 2", "step", 5), ("after epoch 1's checkpoint", "epoch", 1),
          ("inside a checkpoint write", "write", 2), ("tensors in a temp file", "temp", 2),
          ("last step", "step", 9), ("SIGINT in epoch 2", "SIGINT", 4),
          ("SIGTERM in epoch 3", "SIGTERM", 8)]
MATRIX_DATA = Entry("cifar3-20-resume", "cifar", ("cat", "dog", "ship"), 20,
                    test_per_class=10)
PHOTOS = Entry("cifar2-120-400px", "cifar", ("cat", "dog"), 150, shorter=(120, 400),
               test_per_class=50)
RESULTS = Path(__file__).resolve().with_name("resume_matrix.jsonl")


def _same(whole: Path, cut: Path) -> dict[str, bool]:
    return {"weights": same_weights(whole, cut), "metrics": metrics(whole) == metrics(cut),
            "model_json": record(whole) == record(cut)}


def matrix(root: Path) -> list[dict]:
    import convnet

    data = materialize(MATRIX_DATA, root)
    rows = []
    for arch in PRESETS:
        for precision in ("fp32", "bf16"):
            config = dict(data=data, arch=arch, precision=precision, image_size=32, epochs=3,
                          batch_size=16, augment="light", ema=0.9, flip=True, seed=4,
                          val_split=0.2, threads=1, checkpoint_every=0, lr=2e-3)
            work = Path(tempfile.mkdtemp(dir=root))
            whole = convnet.train(out=work / "whole", **config).path
            for name, point, count in POINTS:
                cut = work / f"cut-{point}-{count}"
                child = run_child(cut, point, count, config, timeout=900)
                if not cut.is_dir():
                    raise SystemExit(f"{arch} {precision} {name}: the child left no run "
                                     f"(exit {child.returncode}): {child.stderr[-3000:]}")
                convnet.train(resume=cut)
                rows.append({"part": "matrix", "arch": arch, "precision": precision,
                             "kill": name, "code": child.returncode, **_same(whole, cut)})
                print(rows[-1], flush=True)
    return rows


def _cli(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "convnet", "train", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _epochs_done(folder: Path) -> list[dict]:
    try:
        with (folder / "metrics.csv").open() as file:
            return list(csv.DictReader(file))
    except (OSError, csv.Error):
        return []


def _kill_during(args: list[str], folder: Path, epoch: int) -> str:
    """Start training and SIGKILL it about halfway through ``epoch`` (1-based); returns
    where the checkpoint it left stands."""
    process = _cli([*args, "--out", str(folder)])
    deadline = time.monotonic() + 1800
    while process.poll() is None and time.monotonic() < deadline:
        done = _epochs_done(folder)
        if len(done) >= epoch - 1:
            last = float(done[-1]["seconds"]) if done else 5.0
            time.sleep(last / 2)
            os.kill(process.pid, signal.SIGKILL)
            break
        time.sleep(0.005)
    process.wait()
    info = json.loads(next(folder.glob("checkpoint.*.json")).read_text())["info"] \
        if list(folder.glob("checkpoint.*.json")) else None
    return "no checkpoint" if info is None else \
        f"epoch {info['epoch']} done" + (f", in epoch {info['in_epoch'][0]}"
                                          if info.get("in_epoch") else "")


def _commands(part: str, root: Path, args: list[str], epochs_of) -> list[dict]:
    work = Path(tempfile.mkdtemp(dir=root))
    whole = work / "whole"
    assert _cli([*args, "--out", str(whole)]).wait() == 0
    epochs = epochs_of(whole)
    rows = []
    for label, epoch in (("during epoch 3", 3), ("during the last epoch", epochs)):
        cut = work / f"cut-{epoch}"
        stood = _kill_during(args, cut, epoch)
        resumed = subprocess.run([sys.executable, "-m", "convnet", "train", "--resume",
                                  str(cut), "--threads", "1", "--no-report"],
                                 capture_output=True, text=True)
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        rows.append({"part": part, "kill": f"{label} (of {epochs})", "checkpoint": stood,
                     **_same(whole, cut)})
        print(rows[-1], flush=True)
    return rows


def digits(root: Path) -> list[dict]:
    return _commands("digits", root, ["--epochs", "4", "--seed", "3", "--threads", "1",
                                      "--no-report"], lambda whole: 4)


def photos(root: Path) -> list[dict]:
    data = materialize(PHOTOS, root)
    return _commands("photos", root, ["--data", data, "--seed", "3", "--threads", "1",
                                      "--no-report"],
                     lambda whole: json.loads((whole / "model.json").read_text())
                     ["config"]["epochs"])


def _table(rows: list[dict]) -> None:
    keys = [k for k in rows[0] if k != "part"]
    print("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join("yes" if v is True else "**no**" if v is False else str(v)
                                for v in (row[k] for k in keys)) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", nargs="+", default=["matrix", "digits", "photos"],
                        choices=["matrix", "digits", "photos"])
    parser.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) /
                        "convnet-resume-bench")
    options = parser.parse_args()
    options.root.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("CONVNET_CACHE", str(options.root / "cache"))
    os.chdir(options.root)
    header = {"date": str(date.today()), "machine": machine(), "cpu_flags": cpu_flags()}
    print(header)
    for part in options.part:
        started = time.perf_counter()
        rows = {"matrix": matrix, "digits": digits, "photos": photos}[part](options.root)
        with RESULTS.open("a") as file:
            for row in rows:
                file.write(json.dumps({**header, **row}) + "\n")
        print(f"\n{part}: {time.perf_counter() - started:.0f} s")
        _table(rows)


if __name__ == "__main__":
    main()
