"""Does `--time` hold? `convnet train --data D --time T` on zoo datasets, timed from
process start to exit (start-up, decoding with an empty cache, training, test, saving).

    python bench/time_budget.py                           # the default datasets and budgets
    python bench/time_budget.py --only cifar3-2000 --budgets 30s,2m
    python bench/time_budget.py --only gray-digits,mnist-28 --budgets 6s \\
        --old /tmp/old --rounds 3                         # against another checkout

``--only`` takes zoo names, the unusual folders' names (`unusual_folders.FOLDERS`) or
folders. With ``--old``, each (dataset, budget) runs that checkout's package
(PYTHONPATH=OLD/src) and this one's in turn, ``--rounds`` times, the order alternating
between rounds so that a slow spell of the machine hits both.

Prints one row per run: checkout, dataset, budget, wall seconds, wall / budget, epochs,
accuracy; then medians per checkout with ``--old``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from auto_zoo import run_once
from benchdata import checkout, cpu_flags, machine
from convnet.training.config import parse_time
from zoo_data import ZOO, materialize

DEFAULT = "cifar2-500,cifar3-2000,cifar10-500,mnist-96px,mnist-28,shapes-64"


def _data(name: str, root: Path) -> str:
    """A zoo name's folder (built under ``root`` if needed), an unusual folder's
    (`unusual_folders.FOLDERS`, e.g. ``gray-digits``), or ``name`` itself."""
    from unusual_folders import FOLDERS, folder

    entries = {entry.name: entry for entry in ZOO}
    if name in entries:
        return materialize(entries[name], root)
    return folder(name, root) if name in FOLDERS else name


def _order(trees: list[tuple[str, dict]], round_: int) -> list[tuple[str, dict]]:
    return trees if round_ % 2 == 0 else trees[::-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) / "zoo")
    parser.add_argument("--only", default=DEFAULT, help="zoo names or folders, commas between")
    parser.add_argument("--budgets", default="20s,1m")
    parser.add_argument("--old", type=Path, help="another checkout, run in turn with this one")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="convnet-budget-"))
    trees: list[tuple[str, dict]] = [("this", {})]  # (label, the environment that runs it)
    if args.old is not None:
        env, code = checkout(args.old)
        trees.append((f"old ({code})", env))
    print(f"machine: {machine()}; CPU flags: {cpu_flags()}")
    print("| checkout | dataset | --time | wall s | wall / budget | epochs | accuracy |")
    print("|---|---|---|---|---|---|---|")
    found: dict[tuple[str, str, str], list[dict]] = {}
    for name in args.only.split(","):
        data = _data(name, args.root)
        for budget in args.budgets.split(","):
            for round_ in range(args.rounds):
                for label, env in _order(trees, round_):
                    row = run_once(data, ["--time", budget], work, env)
                    found.setdefault((label, name, budget), []).append(row)
                    _print(label, name, budget, row)
                    with (work.parent / "convnet-budget.jsonl").open("a") as handle:
                        handle.write(json.dumps({"checkout": label, "dataset": name,
                                                 "budget": budget, **row}) + "\n")
    if args.rounds > 1 or args.old is not None:
        medians(found)


def _print(label: str, name: str, budget: str, row: dict) -> None:
    ratio = row["seconds"] / parse_time(budget)
    print(f"| {label} | {name} | {budget} | {row['seconds']:.1f} | {ratio:.2f} | "
          f"{row.get('epochs', '—')} | {row.get('accuracy', float('nan')):.2%} |", flush=True)


def medians(found: dict[tuple[str, str, str], list[dict]]) -> None:
    print("\nmedians over the rounds")
    print("| checkout | dataset | --time | wall s | epochs | accuracy (each) |")
    print("|---|---|---|---|---|---|")
    for (label, name, budget), rows in found.items():
        good = [row for row in rows if "accuracy" in row]
        if not good:
            print(f"| {label} | {name} | {budget} | failed: {rows[0].get('error')} | | |")
            continue
        each = ", ".join(f"{row['accuracy']:.2%}" for row in good)
        print(f"| {label} | {name} | {budget} | "
              f"{statistics.median(row['seconds'] for row in good):.1f} | "
              f"{statistics.median(row['epochs'] for row in good):g} | "
              f"{statistics.median(row['accuracy'] for row in good):.2%} ({each}) |",
              flush=True)


if __name__ == "__main__":
    main()
