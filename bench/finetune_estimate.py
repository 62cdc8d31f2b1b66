"""The fine-tune plan's time estimate against the time a run takes: for each network, image
side and count of frozen layers, the plan's estimate (`convnet.plan.finetune.estimate`,
from a speed probe measured in a fresh process with an empty cache, as a new user's plan
measures it) beside the run's own features and epochs, timed.

    python bench/finetune_estimate.py                 # cat/dog photos, five settings
    python bench/finetune_estimate.py --settings efficientnet-lite0:160:11

A setting is ARCH:SIDE:FROZEN. Each run is a fresh `convnet train --init imagenet` process
with those options, 2 epochs and its own empty cache: the features' seconds come from the
line it prints when it computes them, the epochs' from its metrics.csv. The ratio is the
estimate over the real seconds (1.00: exact; over 1: the plan thinks the run slower than it
is, and so plans less than the time allows).
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
from pathlib import Path

from benchdata import append_row, cpu_flags, machine
from finetune_pairs import catdog

HERE = Path(__file__).resolve().parent
EPOCHS = 2
SETTINGS = ("efficientnet-lite2:128:11", "efficientnet-lite2:128:143",
            "efficientnet-lite0:160:11", "efficientnet-lite0:160:103",
            "efficientnet-lite2:192:67")

# run in a fresh process: the plan's estimate of the features, one epoch and EPOCHS epochs
ESTIMATE = """
import json, sys
import torch
from convnet import data as datasets
from convnet.data.fingerprint import of_layout
from convnet.plan import finetune, freezing
from convnet.plan.planner import probe_on, trained_images
from convnet.training.config import TrainConfig
data, arch, side, frozen, epochs = sys.argv[1:]
side, frozen, epochs = int(side), int(frozen), int(epochs)
fp = of_layout(datasets.folder_layout(data))
config = TrainConfig(data=data, arch=arch, init="imagenet", image_size=side)
trained = trained_images(fp, config.val_split)
batch = min(finetune.BATCH["cpu"], trained)
[freeze], _ = freezing.options(arch, (side, side, 3), fp.classes, frozen)
probe = probe_on(torch.device("cpu"), "auto")
cost = finetune.estimate(fp, config, probe, side, batch, trained, freeze.step_factor)
print(json.dumps({"features": cost.features, "epochs": epochs * cost.epoch}))
"""


def _estimate(data: str, arch: str, side: int, frozen: int, cache: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", ESTIMATE, data, arch, str(side), str(frozen),
                           str(EPOCHS)], capture_output=True, text=True, check=True,
                          env={**os.environ, "CONVNET_CACHE": str(cache)})
    return json.loads(done.stdout.strip().splitlines()[-1])


def _run(data: str, arch: str, side: int, frozen: int, out: Path, cache: Path) -> dict:
    done = subprocess.run([sys.executable, "-m", "convnet", "train", "--data", data, "--init",
                           "imagenet", "--arch", arch, "--image-size", str(side),
                           "--frozen-layers", str(frozen), "--epochs", str(EPOCHS),
                           "--seed", "0", "--no-report", "--out", str(out)],
                          capture_output=True, text=True, timeout=3600,
                          env={**os.environ, "CONVNET_CACHE": str(cache)})
    if done.returncode != 0:
        raise SystemExit(f"error: the run {arch}:{side}:{frozen} failed: "
                         f"{done.stderr.strip().splitlines()[-1:]}")
    found = re.search(r"computed once \(([\d.]+) s", done.stdout)
    with open(out / "metrics.csv") as rows:
        epochs = sum(float(row["seconds"]) for row in csv.DictReader(rows))
    return {"features": float(found.group(1)) if found else None, "epochs": epochs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS))
    parser.add_argument("--data", help="a photo folder [the CIFAR cat/dog photos]")
    parser.add_argument("--results", type=Path, default=HERE / "finetune_estimate.jsonl")
    args = parser.parse_args()
    print(f"machine: {machine()}; cpu flags: {cpu_flags()}", flush=True)
    root = Path(tempfile.mkdtemp(prefix="convnet-estimate-"))
    data = args.data or catdog(root)
    print(f"| setting | features s (est / real) | {EPOCHS} epochs s (est / real) | "
          "ratio |\n|---|---|---|---|", flush=True)
    ratios = []
    for index, setting in enumerate(args.settings):
        arch, side, frozen = setting.split(":")
        side, frozen = int(side), int(frozen)
        estimated = _estimate(data, arch, side, frozen, root / f"probe-{index}")
        real = _run(data, arch, side, frozen, root / f"run-{index}", root / f"cache-{index}")
        total = estimated["features"] + estimated["epochs"]
        ratio = total / ((real["features"] or 0) + real["epochs"])
        ratios.append(ratio)
        append_row(args.results, {"setting": setting, "estimated": estimated, "real": real,
                                  "ratio": round(ratio, 3)})
        print(f"| {setting} | {estimated['features']:.1f} / {real['features'] or 0:.1f} | "
              f"{estimated['epochs']:.1f} / {real['epochs']:.1f} | {ratio:.2f} |", flush=True)
    print(f"median ratio {statistics.median(ratios):.2f} (from {min(ratios):.2f} to "
          f"{max(ratios):.2f})", flush=True)


if __name__ == "__main__":
    main()
