"""Training speed when the CPU is shared: the default digits run alone, beside one busy
process, and beside a second identical training, under each thread setting.

    python bench/shared_cpu.py                       # every setting and scene, 3 rounds
    python bench/shared_cpu.py --settings default,threads1 --rounds 5 --epochs 4

Each training is a fresh `python -m convnet train` process (the thread settings are read
when torch starts). Its speed is the median training images/s of its epochs after the
first, from its metrics.csv. Scenes and settings are interleaved round by round, so drift
of the machine spreads over all of them. The busy process is a pure-Python loop, stopped
when the training ends; every process here is bounded by `--timeout`.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchdata import cpu_flags, machine

BUSY = "import time\nend = time.time() + {seconds}\nwhile time.time() < end: pass\n"
SETTINGS: dict[str, tuple[list[str], dict[str, str]]] = {
    # name: (extra `convnet train` arguments, extra environment)
    "default": ([], {}),
    "threads1": (["--threads", "1"], {}),
    "threads2": (["--threads", "2"], {}),
    "omp2-active": ([], {"OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "ACTIVE",
                         "CONVNET_THREADS": "2"}),
}
SCENES = ("alone", "busy", "two")


def _train(out: Path, epochs: int, setting: str, timeout: float) -> subprocess.Popen:
    args, env = SETTINGS[setting]
    command = [sys.executable, "-m", "convnet", "train", "--epochs", str(epochs),
               "--out", str(out), *args]
    return subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _rate(out: Path) -> float:
    with (out / "metrics.csv").open() as file:
        rates = [float(row["images_per_s"]) for row in csv.DictReader(file)]
    return statistics.median(rates[1:] or rates)


def _wait(process: subprocess.Popen, timeout: float) -> None:
    _, err = process.communicate(timeout=timeout)
    if process.returncode != 0:
        raise SystemExit(f"training failed ({process.returncode}): {err.strip()[-500:]}")


def scene(kind: str, setting: str, epochs: int, work: Path, timeout: float) -> float:
    """The first training's images/s in ``kind`` of company."""
    outs = [Path(tempfile.mkdtemp(dir=work)) / "run" for _ in range(2)]
    company: subprocess.Popen | None = None
    if kind == "busy":
        company = subprocess.Popen([sys.executable, "-c", BUSY.format(seconds=timeout)])
    elif kind == "two":
        company = _train(outs[1], epochs, setting, timeout)
    try:
        _wait(_train(outs[0], epochs, setting, timeout), timeout)
        if kind == "two":
            _wait(company, timeout)
    finally:
        if company is not None and company.poll() is None:
            company.kill()
            company.wait()
    return _rate(outs[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--scenes", default=",".join(SCENES))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    settings, scenes = args.settings.split(","), args.scenes.split(",")
    print(f"machine: {machine()}\ncpu flags: {cpu_flags()}\nload: {os.getloadavg()}")
    rates: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="convnet-shared-") as work:
        for _ in range(args.rounds):
            for kind in scenes:
                for setting in settings:
                    rate = scene(kind, setting, args.epochs, Path(work), args.timeout)
                    rates.setdefault((setting, kind), []).append(rate)
                    print(f"  {setting:12s} {kind:6s} {rate:8.0f} images/s", flush=True)
    alone = {s: statistics.median(rates[(s, "alone")]) for s in settings
             if (s, "alone") in rates}
    print("\n| setting | " + " | ".join(scenes) + " |")
    print("|---" * (len(scenes) + 1) + "|")
    for setting in settings:
        cells = []
        for kind in scenes:
            median = statistics.median(rates[(setting, kind)])
            share = f" ({median / alone[setting]:.0%})" if setting in alone and kind != "alone" \
                else ""
            cells.append(f"{median:,.0f}{share}")
        print(f"| {setting} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
