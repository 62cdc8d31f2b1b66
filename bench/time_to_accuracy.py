"""Time to accuracy on photos: convnet with a tenth of a plain PyTorch fine-tune's time,
against that loop, in one run on the same folders.

    python bench/time_to_accuracy.py                    # both folders, the tenth
    python bench/time_to_accuracy.py --only six --share 0.1 0.33 --default
    python bench/time_to_accuracy.py --no-loop --share --default   # the no-option run alone
    python bench/time_to_accuracy.py --only catdog --seeds 3     # the bar on 3 seeds' means

Per folder (CIFAR-10 photos upscaled to a shorter side of 120-400 px, bench/zoo_data.py):
``six``, 6 classes of 41 training and 50 test images (246 training, like a small user
folder), and ``catdog``, 500 cats and 500 dogs with 200 test images each (``catdog10k``:
all 5,000 of each, 500 test images each, asked for by name). First the plain
loop (bench/plain_finetune.py: 224 px, 2 head epochs then 3 of every layer), timed from
process start to exit; then, for each --share, `convnet train --data FOLDER --time T` with
T = share × the loop's wall time, each in a fresh, empty ``CONVNET_CACHE`` as a new user
has it (decoding, the weights' conversion, the speed probes, the features: all in the
time), timed from process start to exit, the report included. ``--default`` adds the
no-option run (fresh cache too), and ``--archs lite0 lite1 lite2`` a run from each ImageNet
network with no other option, against which the no-option run's choice of network is read
(``four``, a third folder: 4 classes of 120 training and 100 test images), and
``--variant FLAGS`` a run with those flags (``'--patience 99'``: every planned epoch
trained, against the plan's stop 2 epochs after the best). ``--checkout TREE`` runs
another checkout's convnet (its src/ first on the path): the rows before a change. The issue's
bar: at a tenth, convnet's test accuracy at least the loop's, and its wall time at most 0.15
of the loop's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchdata import add_checkout, append_row, checkout, cpu_flags, machine
from finetune_pairs import run_once
from zoo_data import Entry, materialize

HERE = Path(__file__).resolve().parent
FOLDERS = {
    "six": Entry("six-photos", "cifar", ("airplane", "bird", "cat", "deer", "frog", "ship"),
                 41, shorter=(120, 400), test_per_class=50),
    "catdog": Entry("catdog-photos", "cifar", ("cat", "dog"), 500, shorter=(120, 400),
                    test_per_class=200),
    # a third folder for the choice of ImageNet network: 4 classes, 120 training images each
    "four": Entry("four-photos", "cifar", ("automobile", "bird", "horse", "truck"), 120,
                  shorter=(120, 400), test_per_class=100),
    # many classes of a few images (the same folder as `unusual_folders.py`'s ten-small)
    "ten": Entry("unusual-ten-small", "cifar", (), 15, shorter=(120, 400),
                 test_per_class=30),
    # every CIFAR cat and dog: the 10,000-photo folder (the no-option run alone)
    "catdog10k": Entry("catdog10k-photos", "cifar", ("cat", "dog"), 5000,
                       shorter=(120, 400), test_per_class=500),
}
LIMIT = 0.15  # the wall time convnet may take, as a share of the loop's, at a tenth


def plain(data: str, cache: Path, seed: int = 0) -> dict:
    """The loop's test accuracy and its wall time, start-up and decoding included."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(HERE / "plain_finetune.py"), data,
                           "--seed", str(seed)],
                          capture_output=True, text=True, timeout=7200,
                          env={**os.environ, "CONVNET_CACHE": str(cache)})
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the plain loop failed: {done.stderr.strip()[-400:]}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "wall_s": seconds}


def ours(data: str, flags: list[str], work: Path) -> dict:
    """`convnet train` in a fresh cache: test accuracy, wall time, what the plan chose."""
    shutil.rmtree(work, ignore_errors=True)  # an empty cache, as a new user's first command
    row = run_once(data, flags, work, work / "cache")
    row["wall_s"] = row.pop("seconds")
    if "error" in row:
        return row
    config = json.loads((work / "run" / "model.json").read_text())["config"]
    side = row.pop("image_size")[0]
    return {**row, "side": side, "frozen": config.get("frozen_layers")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", default=["six", "catdog"], choices=list(FOLDERS))
    parser.add_argument("--share", type=float, nargs="*", default=[0.1])
    parser.add_argument("--default", action="store_true", help="also the no-option run")
    parser.add_argument("--archs", nargs="*", default=[], choices=("lite0", "lite1", "lite2"),
                        help="also `--init imagenet --arch efficientnet-X` with no other "
                             "option, to check the plan's choice of network against each")
    parser.add_argument("--variant", nargs="*", default=[], metavar="FLAGS",
                        help="also a run with these flags (each one quoted string), e.g. "
                             "'--patience 99' to train every epoch")
    parser.add_argument("--no-loop", action="store_true",
                        help="skip the plain loop (then --share has nothing to be a share of)")
    parser.add_argument("--seeds", type=int, default=1,
                        help="run the loop and each convnet command with seeds 0..N-1 (each "
                             "command's share of its own seed's loop), and give the means")
    parser.add_argument("--reuse-loops", action="store_true",
                        help="take each seed's loop from its latest row in --results instead "
                             "of running it (its code unchanged): convnet's side alone, rerun")
    parser.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) / "zoo")
    parser.add_argument("--results", type=Path, default=HERE / "time_to_accuracy.jsonl")
    add_checkout(parser)
    args = parser.parse_args()
    env, code = checkout(args.checkout)
    os.environ.update(env)  # `run_once` starts convnet with this process's environment
    print(f"machine: {machine()}; cpu flags: {cpu_flags()}; convnet: {code}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="convnet-tta-"))
    print("| folder | trainer | --time | wall s | wall / loop | test accuracy | plan | bar |\n"
          "|---|---|---|---|---|---|---|---|", flush=True)
    for name in args.only:
        data = str(materialize(FOLDERS[name], args.root))
        tenths = [_seed(name, data, seed, args, work, code) for seed in range(args.seeds)]
        tenths = [pair for pair in tenths if pair is not None]
        if len(tenths) > 1:
            _means(name, tenths)


def _seed(name: str, data: str, seed: int, args: argparse.Namespace, work: Path,
          code: str) -> tuple[dict, dict] | None:
    """One seed's loop and convnet commands on one folder; (the loop, convnet at a tenth)
    where both ran."""
    reused = _last_loop(args.results, name, seed) if args.reuse_loops else None
    loop = None if args.no_loop else reused or plain(data, work / "loop-cache", seed)
    if loop is not None:
        if reused is None:
            append_row(args.results, {"folder": name, "trainer": "plain loop", "seed": seed,
                                      **loop})
        kept = f", the row of {reused['date']} at {reused['commit']}" if reused else ""
        print(f"| {name} | plain loop (224 px, 2+3 epochs), seed {seed}{kept} | — | "
              f"{loop['wall_s']:.1f} | 1.00 | {loop['accuracy']:.2%} | | |", flush=True)
    runs = [(f"{share:g}", ["--time", f"{max(5, round(share * loop['wall_s']))}s"])
            for share in args.share if loop is not None] + \
        ([("no options", [])] if args.default else []) + \
        [(arch, ["--init", "imagenet", "--arch", f"efficientnet-{arch}"])
         for arch in args.archs] + \
        [("variant", variant.split()) for variant in args.variant]
    tenth = None
    for label, flags in runs:
        seeded = flags + (["--seed", str(seed)] if seed else [])
        row = ours(data, seeded, work / "convnet")
        append_row(args.results, {"folder": name, "trainer": "convnet", "flags": seeded,
                                  "code": code, "seed": seed,
                                  **({} if loop is None else {
                                      "loop_wall_s": loop["wall_s"],
                                      "loop_accuracy": loop["accuracy"]}), **row})
        _print(name, flags, row, loop, label == "0.1")
        if label == "0.1" and "error" not in row:
            tenth = (loop, row)
    return tenth


def _last_loop(results: Path, name: str, seed: int) -> dict | None:
    """The latest loop row for ``name`` and ``seed`` in ``results`` (a row without a seed
    ran seed 0)."""
    if not results.is_file():
        return None
    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    found = [row for row in rows if row.get("folder") == name and
             row.get("trainer") == "plain loop" and row.get("seed", 0) == seed]
    return found[-1] if found else None


def _means(name: str, pairs: list[tuple[dict, dict]]) -> None:
    """The bar on the means over seeds: one test split's accuracy moves by a standard
    error of ~2 points at 400 images, so one seed decides little."""
    loops = [loop["accuracy"] for loop, _ in pairs]
    ours_ = [row["accuracy"] for _, row in pairs]
    ratios = [row["wall_s"] / loop["wall_s"] for loop, row in pairs]
    held = statistics.mean(ours_) >= statistics.mean(loops) and max(ratios) <= LIMIT
    print(f"| {name} | means of {len(pairs)} seeds | 0.1 | | "
          f"{statistics.mean(ratios):.2f} (most {max(ratios):.2f}) | "
          f"convnet {statistics.mean(ours_):.2%} (±{statistics.stdev(ours_):.2%}) against "
          f"the loop's {statistics.mean(loops):.2%} (±{statistics.stdev(loops):.2%}) | | "
          f"{'holds' if held else 'misses'} |", flush=True)


def _print(name: str, flags: list[str], row: dict, loop: dict | None, tenth: bool) -> None:
    if "error" in row:
        print(f"| {name} | convnet | {' '.join(flags)} | failed: {row['error']} |", flush=True)
        return
    ratio = None if loop is None else row["wall_s"] / loop["wall_s"]
    bar = "" if not tenth or ratio is None else (
        "holds" if ratio <= LIMIT and row["accuracy"] >= loop["accuracy"] else "misses")
    plan = f"{row['init'] or 'scratch'}, {row['arch'].removeprefix('efficientnet-')}, " \
           f"{row['side']} px, {row['epochs']} epochs, {row['frozen']} frozen"
    shown = "—" if ratio is None else f"{ratio:.2f}"
    given = "none" if not flags else flags[1] if flags[0] == "--time" else " ".join(flags)
    print(f"| {name} | convnet | {given} | {row['wall_s']:.1f} | "
          f"{shown} | {row['accuracy']:.2%} | {plan} | {bar} |", flush=True)


if __name__ == "__main__":
    main()
