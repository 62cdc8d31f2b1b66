"""The planner on the zoo: `convnet train --data D` with no options against hand-picked
settings given the same time, on every dataset of `zoo_data.ZOO`.

    python bench/auto_zoo.py                       # build the zoo once, run every dataset
    python bench/auto_zoo.py --only cifar2-100,shapes-5
    python bench/auto_zoo.py --table               # the markdown table from the results

Each run is a fresh `convnet train` process with an empty decode cache, timed from start to
exit (Python start-up, decoding, training, test scoring and saving; no report). The
hand-picked variants train for as many epochs as the no-option run did (a fixed `--time`
would charge each of them the probe and start-up that dominate a 7-second run); the table's
"best by hand" is the most accurate variant that took at most 1.5× the no-option time, so
no row wins by training longer. Results are appended as JSON lines to --results; the table
takes the last result of each (dataset, variant).
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

from benchdata import append_row, cpu_flags, machine
from zoo_data import HELD_OUT, ZOO, materialize

SLOWER = 1.5  # a variant counts as "within the same time" up to this multiple
# Variants tried by hand, by kind of data: what an expert would reach for first.
PHOTOS = {"32 px, strong aug": ["--image-size", "32", "--augment", "strong"],
          "48 px": ["--image-size", "48"],
          "64 px, light aug": ["--image-size", "64", "--augment", "light"],
          "32 px, `small` preset": ["--image-size", "32", "--arch", "small"]}
DIGITS = {"28 px, `default` preset": ["--image-size", "28", "--arch", "default"],
          "`lenet`, 28 px, no aug": ["--image-size", "28", "--arch", "lenet", "--augment",
                                     "none"],
          "strong aug": ["--augment", "strong"]}
TINY = {"no aug": ["--augment", "none"],
        "flat head": ["--arch", "conv32k3p1-bn-relu-conv64k3p1-bn-relu-fc128-relu-fc"],
        "lr 3e-3": ["--lr", "3e-3"]}
LARGE_SHAPES = {"`small` preset": ["--arch", "small"],
                "no aug": ["--augment", "none"],
                "`tinyvgg`": ["--arch", "tinyvgg"]}


def variants(name: str) -> dict[str, list[str]]:
    if name.startswith("cifar"):
        return PHOTOS
    if name.startswith("mnist"):
        return {**DIGITS, "no aug": ["--augment", "none"]} if name != "mnist-28" else \
            {"`lenet`, no aug": ["--arch", "lenet", "--augment", "none"],
             "strong aug": ["--augment", "strong"], "`small` preset": ["--arch", "small"]}
    return TINY if name.endswith("-5") else LARGE_SHAPES


def run_once(data: str, flags: list[str], work: Path, extra: dict[str, str] | None = None
             ) -> dict:
    """One fresh `convnet train` process; ``extra``: more of its environment (another
    checkout's, from `benchdata.checkout`)."""
    out, cache = work / "run", work / "cache"
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)
    env = {**os.environ, **(extra or {}), "CONVNET_CACHE": str(cache)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "convnet", "train", "--data", data,
                           "--no-report", "--out", str(out), *flags],
                          capture_output=True, text=True, env=env, timeout=3600)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:], "seconds": seconds}
    meta = json.loads((out / "model.json").read_text())
    plan = [line for line in done.stdout.splitlines() if line.startswith("Plan:")]
    return {"accuracy": meta["metrics"]["test"]["accuracy"], "seconds": seconds,
            "epochs": len((out / "metrics.csv").read_text().splitlines()) - 1,
            "image_size": meta["input_shape"][:2], "spec": meta["spec"],
            "plan": plan[0] if plan else None}


def run_dataset(entry, root: Path, results: Path, work: Path) -> None:
    data = materialize(entry, root)
    auto = run_once(data, [], work)
    rows = [{"dataset": entry.name, "variant": "no options", **auto}]
    print(json.dumps(rows[-1]), flush=True)
    epochs = str(auto.get("epochs", 20))
    for label, flags in variants(entry.name).items():
        rows.append({"dataset": entry.name, "variant": label,
                     **run_once(data, [*flags, "--epochs", epochs], work)})
        print(json.dumps(rows[-1]), flush=True)
    for row in rows:
        append_row(results, row)


def table(results: Path) -> str:
    last: dict[tuple[str, str], dict] = {}
    for line in results.read_text().splitlines():
        row = json.loads(line)
        last[(row["dataset"], row["variant"])] = row
    lines = []
    for held in (False, True):
        lines += ["", f"**{'Held-out third' if held else 'Tuning set'}**", "",
                  "| dataset | no options: accuracy, time | best by hand: accuracy, time "
                  "(variant) | gap |", "|---|---|---|---|"]
        for entry in ZOO:
            if (entry.name in HELD_OUT) != held or (entry.name, "no options") not in last:
                continue
            auto = last[(entry.name, "no options")]
            hand = [row for (name, _), row in last.items()
                    if name == entry.name and row["variant"] != "no options"
                    and "accuracy" in row]
            limit = SLOWER * auto["seconds"]
            best = max((row for row in hand if row["seconds"] <= limit),
                       key=lambda row: row["accuracy"], default=None)
            auto_text = f"{auto['accuracy']:.2%}, {auto['seconds']:.0f} s" \
                if "accuracy" in auto else f"error: {auto['error']}"
            best_text = "—" if best is None else \
                f"{best['accuracy']:.2%}, {best['seconds']:.0f} s ({best['variant']})"
            gap = "—" if best is None or "accuracy" not in auto else \
                f"{(best['accuracy'] - auto['accuracy']) * 100:+.2f}"
            lines.append(f"| {entry.name} | {auto_text} | {best_text} | {gap} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) / "zoo")
    parser.add_argument("--results", type=Path,
                        default=Path(__file__).with_name("auto_zoo.jsonl"))
    parser.add_argument("--only", help="comma-separated dataset names")
    parser.add_argument("--held-out", action="store_true", help="run the held-out third")
    parser.add_argument("--table", action="store_true")
    args = parser.parse_args()
    if args.table:
        print(table(args.results))
        return
    names = args.only.split(",") if args.only else None
    args.root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="convnet-zoo-"))
    print(f"machine: {machine()}; CPU flags: {cpu_flags()}")
    for entry in ZOO:
        chosen = entry.name in names if names else (entry.name in HELD_OUT) == args.held_out
        if chosen:
            run_dataset(entry, args.root, args.results, work)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
