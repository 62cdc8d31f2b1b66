"""Does `--time` hold? `convnet train --data D --time T` on zoo datasets, timed from
process start to exit (start-up, decoding with an empty cache, training, test, saving).

    python bench/time_budget.py                           # the default datasets and budgets
    python bench/time_budget.py --only cifar3-2000 --budgets 30s,2m

Prints one row per run: dataset, budget, wall seconds, wall / budget, epochs, accuracy.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from auto_zoo import run_once
from benchdata import cpu_flags, machine
from convnet.training.config import parse_time
from zoo_data import ZOO, materialize

DEFAULT = "cifar2-500,cifar3-2000,cifar10-500,mnist-96px,mnist-28,shapes-64"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) / "zoo")
    parser.add_argument("--only", default=DEFAULT)
    parser.add_argument("--budgets", default="20s,1m")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="convnet-budget-"))
    print(f"machine: {machine()}; CPU flags: {cpu_flags()}")
    print("| dataset | --time | wall s | wall / budget | epochs | accuracy |")
    print("|---|---|---|---|---|---|")
    entries = {entry.name: entry for entry in ZOO}
    for name in args.only.split(","):
        data = materialize(entries[name], args.root)
        for budget in args.budgets.split(","):
            row = run_once(data, ["--time", budget], work)
            ratio = row["seconds"] / parse_time(budget)
            print(f"| {name} | {budget} | {row['seconds']:.1f} | {ratio:.2f} | "
                  f"{row.get('epochs', '—')} | {row.get('accuracy', float('nan')):.2%} |",
                  flush=True)
            with (work.parent / "convnet-budget.jsonl").open("a") as handle:
                handle.write(json.dumps({"dataset": name, "budget": budget, **row}) + "\n")


if __name__ == "__main__":
    main()
