"""Scratch, fine-tuning and the no-option choice between them, on two-class photo folders
made from the shared CIFAR-10 JPEGs upscaled to a shorter side of 120–400 px.

    python bench/finetune_pairs.py                   # every pair, three runs each
    python bench/finetune_pairs.py --only catdog     # one pair
    python bench/finetune_pairs.py --table           # the markdown table from the results

Per pair, in this order, each a fresh `convnet train` process timed from start to exit,
the three sharing one cache that starts empty (so the first run decodes, measures the speed
probes and computes the ImageNet features, and the later two reuse them, as a user's
second command would):

1. no options (with the pretrained extra the plan measures both starts and trains one);
2. `--init imagenet`;
3. `--init scratch` (random weights, the plan otherwise left alone).

Results are appended as JSON lines to --results; the table takes the last of each.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchdata import append_row
from zoo_data import Entry, materialize

PAIRS = {name: Entry(f"{name}-photos", "cifar", classes, 500, shorter=(120, 400),
                     test_per_class=200)
         for name, classes in (("catdog", ("cat", "dog")),
                               ("cartruck", ("automobile", "truck")),
                               ("deerhorse", ("deer", "horse")))}
VARIANTS = {"no options": [], "init imagenet": ["--init", "imagenet"],
            "init scratch": ["--init", "scratch"]}


def catdog(root: Path) -> str:
    """The 1,000 CIFAR cat/dog photos (with their test split), written under ``root``."""
    return materialize(PAIRS["catdog"], root)


def run_once(data: str, flags: list[str], work: Path, cache: Path) -> dict:
    out = work / "run"
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "CONVNET_CACHE": str(cache)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "convnet", "train", "--data", data,
                           "--out", str(out), *flags],
                          capture_output=True, text=True, env=env, timeout=3600)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:], "seconds": seconds}
    meta = json.loads((out / "model.json").read_text())
    chose = [line.strip() for line in (done.stdout + done.stderr).splitlines()
             if "the plan fine-tunes" in line or "the plan trains from scratch" in line]
    return {"accuracy": meta["metrics"]["test"]["accuracy"], "seconds": seconds,
            "epochs": len((out / "metrics.csv").read_text().splitlines()) - 1,
            "image_size": meta["input_shape"][:2], "arch": meta["arch"],
            "init": meta["config"].get("init"), "chose": chose[0] if chose else None,
            # what the run said of its choices and of the budget, to read in the rows
            "notes": [line for line in done.stdout.splitlines()
                      if line.startswith(("note:", "Plan:", "time budget"))]}


def run_pair(name: str, root: Path, results: Path) -> None:
    data = materialize(PAIRS[name], root)
    work = Path(tempfile.mkdtemp(prefix=f"convnet-pairs-{name}-"))
    try:
        for variant, flags in VARIANTS.items():
            row = {"pair": name, "variant": variant,
                   **run_once(data, flags, work, work / "cache")}
            print(json.dumps(row), flush=True)
            append_row(results, row)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def table(results: Path) -> str:
    last: dict[tuple[str, str], dict] = {}
    for line in results.read_text().splitlines():
        row = json.loads(line)
        last[(row["pair"], row["variant"])] = row
    lines = ["| pair | scratch (`--init scratch`) | `--init imagenet` | no options: chose "
             "| no options | better of the two | within 1 point |", "|---|---|---|---|---|---|---|"]
    for name in PAIRS:
        rows = [last.get((name, variant)) for variant in VARIANTS]
        if any(row is None or "accuracy" not in row for row in rows):
            continue
        auto, tuned, scratch = rows
        better = max(tuned["accuracy"], scratch["accuracy"])
        gap = (auto["accuracy"] - better) * 100
        chose = "fine-tune" if auto["init"] == "imagenet" else "scratch"
        lines.append(f"| {name} | {_cell(scratch)} | {_cell(tuned)} | {chose} "
                     f"| {_cell(auto)} | {better:.2%} | {'yes' if gap >= -1 else 'no'} "
                     f"({gap:+.2f}) |")
    return "\n".join(lines)


def _cell(row: dict) -> str:
    side = row["image_size"][0]
    return f"{row['accuracy']:.2%} ({side} px, {row['epochs']} ep, {row['seconds']:.0f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path,
                        default=Path(tempfile.gettempdir()) / "convnet-finetune-bench")
    parser.add_argument("--results", type=Path,
                        default=Path(__file__).with_name("finetune_pairs.jsonl"))
    parser.add_argument("--only", help="comma-separated pair names: " + ", ".join(PAIRS))
    parser.add_argument("--table", action="store_true")
    args = parser.parse_args()
    if args.table:
        print(table(args.results))
        return
    args.root.mkdir(parents=True, exist_ok=True)
    for name in args.only.split(",") if args.only else PAIRS:
        run_pair(name, args.root, args.results)


if __name__ == "__main__":
    main()
