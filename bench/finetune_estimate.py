"""The fine-tune plan's time estimate against the time a run takes: for each network, image
side and count of frozen layers, the plan's estimate (`convnet.plan.cost.estimate`,
from a speed probe measured in a fresh process with an empty cache, as a new user's plan
measures it) beside the run's own features and epochs, timed.

    python bench/finetune_estimate.py                 # cat/dog photos, eight settings
    python bench/finetune_estimate.py --settings efficientnet-lite0:160:11 \
        efficientnet-lite0:160:alone

A setting is ARCH:SIDE:FROZEN. Each run is a fresh `convnet train --init imagenet` process
with those options, 2 epochs and its own empty cache: the features' seconds come from the
line it prints when it computes them, the epochs' from its metrics.csv. ARCH:SIDE:alone is
the head alone (``epochs=0``), estimated from forward passes as the plan does, run through
`convnet.train` in a fresh process: its first column is the head's phase (features, fit,
validation images), its second the scoring after it (the run's ``after_seconds``: the
validation and test images in fp32, the detector, the files). The ratio is the
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
            "efficientnet-lite2:192:67", "efficientnet-lite0:128:alone",
            "efficientnet-lite0:160:alone", "efficientnet-lite2:192:alone")

# run in a fresh process: the plan's estimate of the features, one epoch and EPOCHS epochs
ESTIMATE = """
import json, sys
import torch
from convnet.allocator import keep_freed_memory
keep_freed_memory()  # as the CLI does: the pass probes' freed blocks reused
from convnet import data as datasets
from convnet.data.fingerprint import of_layout
from convnet.plan import finetune, freezing
from convnet.plan.cost import estimate
from convnet.plan.planner import trained_images
from convnet.plan.probe import passes_on, probe_on
from convnet.training.config import TrainConfig
data, arch, side, frozen, epochs = sys.argv[1:]
side, frozen, epochs = int(side), int(frozen), int(epochs)
fp = of_layout(datasets.folder_layout(data))
config = TrainConfig(data=data, arch=arch, init="imagenet", image_size=side)
trained = trained_images(fp, config.val_split)
batch = min(finetune.BATCH["cpu"], trained)
[freeze], _ = freezing.options(arch, (side, side, 3), fp.classes, frozen)
probe = probe_on(torch.device("cpu"), "auto")
cost = estimate(fp, config, probe, side, batch, trained, freeze.step_factor,
                passes=passes_on(torch.device("cpu"), "auto"))
print(json.dumps({"features": cost.features, "epochs": epochs * cost.epoch}))
"""

# the same for the head alone: its phase (features, fit) and the scoring after it
ESTIMATE_ALONE = """
import json, sys
import torch
from convnet.allocator import keep_freed_memory
keep_freed_memory()  # as the CLI does: the passes' freed blocks reused
from convnet import data as datasets
from convnet.data.fingerprint import of_layout
from convnet.plan.cost import estimate
from convnet.plan.planner import trained_images
from convnet.plan.probe import passes_on, probe_on
from convnet.training.config import TrainConfig
data, arch, side = sys.argv[1:4]
side = int(side)
fp = of_layout(datasets.folder_layout(data))
config = TrainConfig(data=data, arch=arch, init="imagenet", image_size=side, epochs=0)
trained = trained_images(fp, config.val_split)
device = torch.device("cpu")
cost = estimate(fp, config, probe_on(device, "auto"), side, 32, trained,
                alone=True, passes=passes_on(device, "auto"))
print(json.dumps({"features": cost.features, "epochs": cost.tail}))
"""
# the head alone, run: its phase's seconds (said in a notice) and the run's after_seconds
RUN_ALONE = """
import json, re, sys
from convnet import train
from convnet.allocator import keep_freed_memory
keep_freed_memory()  # as the CLI does (`convnet.train` from Python leaves malloc alone)
from convnet.training.callbacks import Callback
data, arch, side, out = sys.argv[1:5]
said = []
class Notes(Callback):
    def on_notice(self, line):
        said.append(line)
result = train(data=data, init="imagenet", arch=arch, image_size=int(side), epochs=0,
               seed=0, out=out, callbacks=[Notes()])
phase = next(float(m.group(1)) for line in said
             for m in [re.search(r"([\d.]+) s in all", line)] if m)
print(json.dumps({"features": phase, "epochs": result.after_seconds}))
"""


def _estimate(data: str, arch: str, side: int, frozen: str, cache: Path) -> dict:
    script, more = (ESTIMATE_ALONE, []) if frozen == "alone" else \
        (ESTIMATE, [str(frozen), str(EPOCHS)])
    done = subprocess.run([sys.executable, "-c", script, data, arch, str(side), *more],
                          capture_output=True, text=True, check=True,
                          env={**os.environ, "CONVNET_CACHE": str(cache)})
    return json.loads(done.stdout.strip().splitlines()[-1])


def _run_alone(data: str, arch: str, side: int, out: Path, cache: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", RUN_ALONE, data, arch, str(side), str(out)],
                          capture_output=True, text=True, timeout=3600,
                          env={**os.environ, "CONVNET_CACHE": str(cache)})
    if done.returncode != 0:
        raise SystemExit(f"error: the run {arch}:{side}:alone failed: "
                         f"{done.stderr.strip().splitlines()[-1:]}")
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
    print(f"| setting | features s (est / real) | {EPOCHS} epochs s, or after the head "
          "alone (est / real) | ratio |\n|---|---|---|---|", flush=True)
    ratios = []
    for index, setting in enumerate(args.settings):
        arch, side, frozen = setting.split(":")
        side = int(side)
        estimated = _estimate(data, arch, side, frozen, root / f"probe-{index}")
        out, cache = root / f"run-{index}", root / f"cache-{index}"
        real = _run_alone(data, arch, side, out, cache) if frozen == "alone" else \
            _run(data, arch, side, int(frozen), out, cache)
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
