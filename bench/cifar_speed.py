"""Time and test accuracy of the fast CIFAR-10 recipe on the shared JPEG CIFAR-10, per seed;
on a GPU, airbench94 on the same decoded images in the same run.

    python bench/cifar_speed.py                                # cifar-fast-cpu, 1 seed
    python bench/cifar_speed.py --recipe cifar-fast --seeds 5  # GPU: the 94% recipe
    python bench/cifar_speed.py --recipe cifar-fast --seeds 5 --airbench

The JPEGs are decoded once by convnet (the data time is printed apart); every seed then
trains from the same uint8 tensors, so the times are training + test evaluation only.
`--airbench` writes those same images in airbench's own file format (uint8 NHWC in
cifar10/train.pt and test.pt) into a temporary folder and runs `airbench.train94()` there
in a child process (airbench and torchvision must be installed: pip install airbench; it
needs a CUDA GPU). Each figure printed is one run; the summary gives mean and spread.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchdata import SHARED_CIFAR, load_cifar, machine
from convnet.make import fit
from convnet.training.config import TrainConfig

_AIRBENCH_CHILD = """
import json, sys, time, torch, airbench
torch.backends.cudnn.benchmark = True
airbench.warmup94()  # its own first-run warm-up, as its README runs it
for seed in range(int(sys.argv[1])):
    torch.manual_seed(seed)
    torch.cuda.synchronize(); started = time.perf_counter()
    accuracy = airbench.train94(verbose=False)
    torch.cuda.synchronize()
    print(json.dumps({"seconds": time.perf_counter() - started, "accuracy": float(accuracy)}))
"""


def run_recipe(data, recipe: str, seed: int, device: str, out: Path) -> tuple[float, float]:
    """(seconds for training and the test evaluation, test accuracy) of one seed."""
    config = TrainConfig.from_dict({"recipe": recipe, "seed": seed, "device": device})
    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    result = fit(data, config, out=out / f"seed{seed}")
    return time.perf_counter() - started, result.test.accuracy


def run_airbench(data, seeds: int) -> list[tuple[float, float]] | str:
    """airbench94 on the same decoded images; a reason string if it could not run."""
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "cifar10"
        target.mkdir()
        for name, split in (("train", data.train), ("test", data.test)):
            torch.save({"images": split.images.permute(0, 2, 3, 1).contiguous(),  # NHWC
                        "labels": split.labels, "classes": data.classes},
                       target / f"{name}.pt")
        child = subprocess.run([sys.executable, "-c", _AIRBENCH_CHILD, str(seeds)],
                               cwd=folder, capture_output=True, text=True)
    if child.returncode != 0:
        lines = child.stderr.strip().splitlines()
        return lines[-1] if lines else f"exit {child.returncode}"
    rows = [json.loads(line) for line in child.stdout.splitlines() if line.startswith("{")]
    return [(row["seconds"], row["accuracy"]) for row in rows]


def summary(name: str, runs: list[tuple[float, float]]) -> float:
    times, accuracies = zip(*runs)
    spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
    print(f"{name}: {len(runs)} run(s), mean {statistics.mean(times):.1f} s "
          f"(min {min(times):.1f}), test accuracy mean {statistics.mean(accuracies):.2%} "
          f"± {spread:.2%} (min {min(accuracies):.2%})")
    return statistics.mean(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="cifar-fast-cpu")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--data", type=Path, default=SHARED_CIFAR,
                        help="CIFAR-10 JPEG folder or .tar.gz")
    parser.add_argument("--airbench", action="store_true", help="also run airbench94 (GPU)")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    started = time.perf_counter()
    data = load_cifar(args.data)
    print(f"data: {len(data.train):,} train / {len(data.test):,} test JPEGs decoded or read "
          f"from the cache in {time.perf_counter() - started:.1f}s")
    out = Path(tempfile.mkdtemp(prefix="convnet-cifar-speed-"))
    runs = []
    for seed in range(args.seeds):
        seconds, accuracy = run_recipe(data, args.recipe, seed, args.device, out)
        print(f"{args.recipe} seed {seed}: {seconds:.1f} s, test accuracy {accuracy:.2%}",
              flush=True)
        runs.append((seconds, accuracy))
    ours = summary(f"convnet --recipe {args.recipe}", runs)
    print(f"run folders: {out}")
    if args.airbench:
        theirs = run_airbench(data, args.seeds)
        if isinstance(theirs, str):
            print(f"airbench94: not run: {theirs}")
            return
        for seed, (seconds, accuracy) in enumerate(theirs):
            print(f"airbench94 run {seed}: {seconds:.1f} s, test accuracy {accuracy:.2%}")
        airbench_time = summary("airbench94", theirs)
        print(f"time ratio convnet / airbench94: {ours / airbench_time:.2f}x")


if __name__ == "__main__":
    main()
