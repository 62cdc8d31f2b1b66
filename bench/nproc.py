"""One process with two threads against two processes with one thread each (torchrun,
gloo) for the default digits run: wall time of the whole command, training images/s and
test accuracy, interleaved round by round.

    python bench/nproc.py --rounds 3
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchdata import cpu_flags, machine

VARIANTS = {
    "1 process x 2 threads": [sys.executable, "-m", "convnet", "train"],
    "2 processes x 1 thread": [sys.executable, "-m", "torch.distributed.run",
                               "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
                               "--master-port", "29541", "-m", "convnet", "train"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {machine()}\ncpu flags: {cpu_flags()}")
    work = Path(tempfile.mkdtemp(prefix="convnet-nproc-"))
    found: dict[str, list[tuple[float, float, float]]] = {name: [] for name in VARIANTS}
    for round_number in range(args.rounds):
        for name, command in VARIANTS.items():
            out = work / f"{round_number}-{len(found[name])}-{name[0]}"
            began = time.perf_counter()
            subprocess.run([*command, "--out", str(out), "--no-report"], check=True,
                           capture_output=True, timeout=600)
            wall = time.perf_counter() - began
            with (out / "metrics.csv").open() as file:
                rates = [float(row["images_per_s"]) for row in csv.DictReader(file)]
            accuracy = json.loads((out / "model.json").read_text())["metrics"]["test"]["accuracy"]
            found[name].append((wall, statistics.median(rates[1:]), accuracy))
            print(f"  {name}: {wall:.1f}s, {statistics.median(rates[1:]):,.0f} images/s, "
                  f"test {accuracy:.2%}", flush=True)
    print("\n| variant | wall time (median) | training images/s (median) | test accuracy |"
          "\n|---|---|---|---|")
    for name, rows in found.items():
        walls, rates, accuracies = zip(*rows)
        print(f"| {name} | {statistics.median(walls):.1f} s | {statistics.median(rates):,.0f} | "
              f"{', '.join(f'{a:.2%}' for a in accuracies)} |")


if __name__ == "__main__":
    main()
