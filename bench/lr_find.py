"""`--lr find` against the planner's lr on the built-in digits, in fresh processes.

    python bench/lr_find.py [--seeds 0 1 2]

For each seed, interleaved: `convnet train --seed S` (the planned lr), then
`convnet train --lr find --seed S` (the range test's suggestion). Reports each run's lr and
test accuracy, the medians, and appends the rows to --results as JSON lines.
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

from benchdata import append_row


def train(out: Path, seed: int, find: bool) -> dict:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "convnet", "train", "--seed", str(seed), "--out",
                    str(out), "--no-report", *(["--lr", "find"] if find else [])],
                   check=True, capture_output=True, timeout=900)
    meta = json.loads((out / "model.json").read_text())
    return {"seed": seed, "lr_find": find, "lr": meta["config"]["lr"],
            "test_accuracy": meta["metrics"]["test"]["accuracy"],
            "seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--results", type=Path,
                        default=Path(__file__).with_name("lr_find.jsonl"))
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="convnet-lr-find-"))
    rows = []
    for seed in args.seeds:
        for find in (False, True):
            rows.append(train(root / f"{'find' if find else 'plan'}-{seed}", seed, find))
            print(json.dumps(rows[-1]))
    summary = {}
    for find in (False, True):
        picked = [r for r in rows if r["lr_find"] == find]
        summary["find" if find else "planned"] = {
            "median_accuracy": statistics.median(r["test_accuracy"] for r in picked),
            "lrs": [r["lr"] for r in picked]}
    print(json.dumps(summary, indent=1))
    append_row(args.results, {"runs": rows, "summary": summary})


if __name__ == "__main__":
    main()
