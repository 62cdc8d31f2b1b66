"""The same measurements on two checkouts of convnet, interleaved: did a change move them?

    git worktree add /tmp/old <commit>        # the code before the change
    python bench/before_after.py --old /tmp/old --rounds 3

Each round runs, for each checkout in turn (the order alternates between rounds, so a slow
spell of a shared machine hits both): `bench/throughput.py --nets keras --seeds 1
--no-keras` (convnet and the plain PyTorch loop, Keras example net on digits, 5 epochs) and
the default `convnet train --no-report` (wall time of the whole command, test accuracy).
Each checkout runs its own bench script and package (PYTHONPATH=CHECKOUT/src). Prints the
medians over the rounds.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
LINE = re.compile(r"convnet ([\d,]+) img/s ([\d.]+)%, plain torch ([\d,]+) img/s")


def _env(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree / "src")}


def throughput(tree: Path) -> tuple[float, float, float]:
    """(convnet img/s, convnet test accuracy %, plain-loop img/s) of one seed."""
    done = subprocess.run([sys.executable, str(tree / "bench" / "throughput.py"), "--nets",
                           "keras", "--seeds", "1", "--no-keras"], env=_env(tree),
                          capture_output=True, text=True, check=True)
    found = LINE.search(done.stdout)
    assert found, done.stdout
    return (float(found.group(1).replace(",", "")), float(found.group(2)),
            float(found.group(3).replace(",", "")))


def default_run(tree: Path, out: Path) -> tuple[float, float, float]:
    """(wall seconds of `convnet train --no-report`, training seconds, test accuracy %)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "convnet", "train", "--no-report", "--out",
                    str(out)], env=_env(tree), capture_output=True, check=True, cwd=tree)
    wall = time.perf_counter() - started
    meta = json.loads((out / "model.json").read_text())
    with (out / "metrics.csv").open() as handle:
        training = sum(float(row["seconds"]) for row in csv.DictReader(handle))
    return wall, training, 100 * meta["metrics"]["test"]["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="checkout before the change")
    parser.add_argument("--new", type=Path, default=HERE, help="checkout after [this one]")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    trees = {"before": args.old.resolve(), "after": args.new.resolve()}
    rows: dict[str, list[tuple[float, ...]]] = {name: [] for name in trees}
    work = Path(tempfile.mkdtemp(prefix="convnet-ab-"))
    for round_ in range(args.rounds):
        order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
        for name in order:
            speed = throughput(trees[name])
            run = default_run(trees[name], work / f"{name}-{round_}")
            rows[name].append(speed + run)
            print(f"round {round_} {name}: convnet {speed[0]:,.0f} img/s ({speed[1]:.2f}%), "
                  f"plain loop {speed[2]:,.0f} img/s; default run {run[0]:.1f} s wall, "
                  f"{run[1]:.1f} s training, {run[2]:.2f}%", flush=True)
    print("\n| checkout | convnet img/s | acc (5 ep) | plain loop img/s | default run wall s |"
          " training s | test acc |\n|---|---|---|---|---|---|---|")
    for name, values in rows.items():
        medians = [statistics.median(column) for column in zip(*values)]
        print(f"| {name} | {medians[0]:,.0f} | {medians[1]:.2f}% | {medians[2]:,.0f} | "
              f"{medians[3]:.1f} | {medians[4]:.1f} | {medians[5]:.2f}% |")


if __name__ == "__main__":
    main()
