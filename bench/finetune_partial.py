"""Partial fine-tuning: training only the later layers of EfficientNet-Lite0 from ImageNet,
the earlier ones frozen (`--frozen-layers N`: run without gradients), against training
every layer, on the same photo folder, interleaved.

    python bench/finetune_partial.py                       # cat/dog photos, 160 px
    python bench/finetune_partial.py --frozen 0 29 47 149  # the layer counts compared

The counts are stage boundaries at which the resolution halves: 11 (the stem and first
stage), 29 (everything at 1/4 of the input side and above), 47 (1/8), 103 (1/16), and 149
(every layer before the pooling: the head alone, as Teachable Machine trains). Each is a
fresh `convnet train --init imagenet` process with the same size, epochs and seed; the
training speed is the median images/s of its epochs (metrics.csv), the accuracy its test
accuracy, the seconds its wall time from start to exit.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchdata import append_row, cpu_flags, machine
from finetune_pairs import catdog

HERE = Path(__file__).resolve().parent


def _train(data: str, frozen: int, side: int, epochs: int, out: Path, cache: Path) -> dict:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "convnet", "train", "--data", data, "--init",
                           "imagenet", "--image-size", str(side), "--epochs", str(epochs),
                           "--frozen-layers", str(frozen), "--seed", "0", "--no-report",
                           "--out", str(out)], capture_output=True, text=True, timeout=7200,
                          env={**os.environ, "CONVNET_CACHE": str(cache)})
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        return {"frozen": frozen, "error": done.stderr.strip().splitlines()[-1:]}
    with open(out / "metrics.csv") as rows:
        speeds = [float(row["images_per_s"]) for row in csv.DictReader(rows)]
    meta = json.loads((out / "model.json").read_text())
    return {"frozen": frozen, "side": side, "epochs": epochs,
            "images_per_s": statistics.median(speeds),
            "accuracy": meta["metrics"]["test"]["accuracy"], "seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frozen", type=int, nargs="+", default=[0, 29, 47, 149])
    parser.add_argument("--side", type=int, default=160)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--data", help="a photo folder [the CIFAR cat/dog photos]")
    parser.add_argument("--results", type=Path, default=HERE / "finetune_partial.jsonl")
    args = parser.parse_args()
    print(f"machine: {machine()}; cpu flags: {cpu_flags()}", flush=True)
    root = Path(tempfile.mkdtemp(prefix="convnet-partial-"))
    data = args.data or catdog(root)
    cache = root / "cache"  # shared: the ImageNet features of the head's epochs, once
    print("| frozen layers | train images/s | test accuracy | wall s |\n|---|---|---|---|",
          flush=True)
    for frozen in args.frozen:
        row = _train(data, frozen, args.side, args.epochs, root / f"run-{frozen}", cache)
        append_row(args.results, row)
        if "error" in row:
            print(f"| {frozen} | failed: {row['error']} | | |", flush=True)
            continue
        print(f"| {frozen} | {row['images_per_s']:.1f} | {row['accuracy']:.2%} | "
              f"{row['seconds']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
