"""Moved labels: how many of them `convnet suspects` puts at the top of its ranking.

    python bench/suspects.py digits               # the shared 8,000 + 2,000 digits as PNGs
    python bench/suspects.py cifar --method cnn   # the shared CIFAR-10 JPEGs (50,000 + 10,000)

The folder is the one bench/near_duplicates.py builds (3% of the training images moved to
a wrong class folder, from a seed). The folder is decoded once first (`convnet check-data`,
not timed, into a cache kept under --root); then `convnet suspects DIR --csv` runs in a
fresh process, its ImageNet feature cache emptied, and the script reads the ranking:

- recall at 2×moved: the share of the moved images among the top 2 × (number moved);
- flagged: how many cleanlab flags, and how many of those were moved (precision).

Results are appended to --results as JSON lines.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchdata import append_row
from near_duplicates import build


def run(target: Path, method: str, cache: Path, extra: list[str]) -> tuple[list[dict], float,
                                                                           str]:
    """(the ranked rows, wall seconds, stderr) of one `convnet suspects` process."""
    env = {**os.environ, "CONVNET_CACHE": str(cache)}
    subprocess.run([sys.executable, "-m", "convnet", "check-data", str(target)],
                   capture_output=True, timeout=3600, env=env, check=False)
    shutil.rmtree(cache / "features", ignore_errors=True)  # ImageNet features: timed afresh
    ranked = cache / "ranked.csv"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "convnet", "suspects", str(target),
                           "--method", method, "--csv", str(ranked), "--sheet",
                           str(cache / "sheet.png"), *extra], capture_output=True, text=True,
                          timeout=7200, env=env)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    with ranked.open() as handle:
        rows = list(csv.DictReader(handle))
    return rows, seconds, done.stderr


def score(target: Path, rows: list[dict]) -> dict:
    moved = {m["path"] for m in json.loads((target / "plan.json").read_text())["moved"]}
    top = [row["path"] for row in rows[: 2 * len(moved)]]
    flagged = [row["path"] for row in rows if row["flagged"] == "True"]
    hits = sum(path in moved for path in flagged)
    return {"images": len(rows), "moved": len(moved),
            "recall_at_2x": round(sum(path in moved for path in top) / len(moved), 4),
            "flagged": len(flagged), "flagged_moved": hits,
            "flagged_precision": round(hits / max(len(flagged), 1), 4),
            "flagged_recall": round(hits / len(moved), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("digits", "cifar"))
    parser.add_argument("--method", default="auto", choices=("auto", "cnn", "imagenet"))
    parser.add_argument("--root", type=Path,
                        default=Path(tempfile.gettempdir()) / "convnet-dedupe-bench")
    parser.add_argument("--results", type=Path,
                        default=Path(__file__).with_name("suspects.jsonl"))
    parser.add_argument("extra", nargs="*", help="more `convnet suspects` options, after --")
    args = parser.parse_args()
    target = build(args.kind, args.root)
    cache = args.root / f"cache-{args.kind}"
    rows, seconds, log = run(target, args.method, cache, args.extra)
    result = {"data": args.kind, "method": args.method, "options": args.extra,
              "seconds": round(seconds, 1), **score(target, rows),
              "how": [line for line in log.splitlines() if line.startswith("fold")]}
    print(json.dumps(result, indent=1))
    append_row(args.results, result)


if __name__ == "__main__":
    main()
