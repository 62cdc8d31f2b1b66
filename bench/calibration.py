"""Calibrated probabilities: how honest a run's test probabilities are before and after its
temperature (fitted on its validation images), for no-option runs a user would start.

    python bench/calibration.py digits     # the built-in digits, no options
    python bench/calibration.py cifar      # the shared CIFAR-10 JPEGs, no options
    python bench/calibration.py photos     # a 2-class photo folder, --init imagenet
                                           # (car/truck, 2,000 test photos)

Each is a fresh `convnet train` process; the figures come from the run's model.json
(`metrics.test.calibration`: expected calibration error over 15 bins, log loss, Brier
score). A temperature changes no answer, so the accuracy is the same before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchdata import append_row, cifar_folder, cpu_flags, machine

HERE = Path(__file__).resolve().parent


def _data(kind: str, root: Path) -> tuple[str, list[str]]:
    """(--data, more flags) for ``kind``."""
    if kind == "digits":
        return "digits", []
    if kind == "cifar":
        return str(cifar_folder()), []
    from dataclasses import replace

    from finetune_pairs import PAIRS
    from zoo_data import materialize

    # all of CIFAR's 1,000 test images per class: on 400 a perfectly calibrated model's
    # 15-bin ECE is about 2-3% from sampling alone, too coarse to read a 2% target
    folder = replace(PAIRS["cartruck"], name="cartruck-photos-test2000", test_per_class=1000)
    return materialize(folder, root), ["--init", "imagenet"]


def measure(kind: str, root: Path) -> dict:
    data, flags = _data(kind, root)
    out = Path(tempfile.mkdtemp(prefix=f"convnet-calibration-{kind}-")) / "run"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "convnet", "train", "--data", data,
                           "--out", str(out), "--no-report", *flags],
                          capture_output=True, text=True, timeout=7200, env=dict(os.environ))
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        return {"kind": kind, "error": done.stderr.strip().splitlines()[-1:]}
    meta = json.loads((out / "model.json").read_text())
    test = meta["metrics"]["test"]
    kept = {key: value for key, value in meta["calibration"].items() if key != "conformal"}
    return {"kind": kind, "data": data, "flags": flags, "accuracy": test["accuracy"],
            "classes": len(meta["classes"]),
            "calibration": kept, "before": test["calibration"]["before"],
            "after": test["calibration"]["after"], "test_images": meta["data"]["test"],
            "sets": test["calibration"].get("sets", {}),
            "seconds": round(seconds, 1)}


def table(rows: list[dict]) -> str:
    lines = ["| data | test images | accuracy | temperature (val images) | ECE before | ECE after "
             "| log loss before | after | Brier before | after | seconds |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['kind']} | failed: {row['error']} |")
            continue
        b, a, c = row["before"], row["after"], row["calibration"]
        lines.append(f"| {row['kind']} | {row['test_images']:,} | {row['accuracy']:.2%} | "
                     f"{c['temperature']:.3f} ({c['fitted_on']:,}) | {b['ece']:.2%} | "
                     f"**{a['ece']:.2%}** | {b['nll']:.4f} | {a['nll']:.4f} | "
                     f"{b['brier']:.4f} | {a['brier']:.4f} | {row['seconds']:.0f} |")
    lines += ["", "Prediction sets (split conformal on the validation images), on the test images:",
              "", "| data | classes | asked | coverage | within 2 points | mean set size |",
              "|---|---|---|---|---|---|"]
    for row in rows:
        for level, found in row.get("sets", {}).items():
            near = abs(found["coverage"] - float(level)) <= 0.02
            lines.append(f"| {row['kind']} | {row.get('classes', '')} | {float(level):.0%} | "
                         f"{found['coverage']:.2%} | {'yes' if near else 'no'} | "
                         f"{found['mean_size']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kinds", nargs="+", choices=("digits", "cifar", "photos"))
    parser.add_argument("--root", type=Path,
                        default=Path(tempfile.gettempdir()) / "convnet-calibration")
    parser.add_argument("--results", type=Path, default=HERE / "calibration.jsonl")
    args = parser.parse_args()
    print(f"machine: {machine()}; cpu flags: {cpu_flags()}", flush=True)
    rows = []
    for kind in args.kinds:
        row = measure(kind, args.root)
        append_row(args.results, row)
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "flags"}), flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
