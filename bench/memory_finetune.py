"""Data held in memory, fine-tuned: CIFAR-10 in its binary release's format (32 px, read
into memory, not decoded from files), trained from scratch and from ImageNet weights under
the same ``--time``, each a fresh process with an empty cache, the two in turn.

    python bench/memory_finetune.py                        # 100 a class, 30s and 1m
    python bench/memory_finetune.py --per-class 50 --budgets 20s --rounds 3

The folder is built once from the shared CIFAR-10 JPEGs (``--per-class`` training and
``--test-per-class`` test images of each of the ten classes, a seeded draw), as the five
``data_batch_N.bin`` files and ``test_batch.bin`` convnet reads as the official files.
Before commit 479f90e, ``--init imagenet`` on it was refused (32 px is too small for
EfficientNet); it is now enlarged to the side the fine-tune's plan chooses.

Prints one row per run (variant, --time, wall seconds, image side, epochs, accuracy), then
medians with ``--rounds`` above 1.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from auto_zoo import run_once
from benchdata import cifar_folder, cpu_flags, machine
from convnet.data.cifar import CLASSES, TEST_FILE, TRAIN_FILES
from time_budget import medians

VARIANTS = {"scratch": [], "imagenet": ["--init", "imagenet"]}


def build(target: Path, per_class: int, test_per_class: int, seed: int = 0) -> Path:
    """The binary-format folder (built once per size and seed)."""
    folder = target / f"cifar10-bin-{per_class}-{test_per_class}-{seed}"
    if (folder / TEST_FILE).is_file():
        return folder
    source, rng = cifar_folder(), random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, count, names in (("train", per_class, TRAIN_FILES),
                                ("test", test_per_class, [TEST_FILE])):
        records = []
        for label, name in enumerate(CLASSES):
            for path in rng.sample(sorted((source / split / name).iterdir()), count):
                with Image.open(path) as image:
                    pixels = np.asarray(image.convert("RGB"), np.uint8)  # (32, 32, 3)
                records.append(bytes([label]) + pixels.transpose(2, 0, 1).tobytes())
        rng.shuffle(records)
        share = -(-len(records) // len(names))  # the records split over the files
        for index, name in enumerate(names):
            (folder / name).write_bytes(b"".join(records[index * share:(index + 1) * share]))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--test-per-class", type=int, default=100)
    parser.add_argument("--budgets", default="30s,1m")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    root = Path(tempfile.gettempdir())
    data = str(build(root / "zoo", args.per_class, args.test_per_class))
    work = Path(tempfile.mkdtemp(prefix="convnet-memory-ft-"))
    print(f"machine: {machine()}; CPU flags: {cpu_flags()}")
    print(f"data: {data} (10 classes, {args.per_class} a class to train, "
          f"{args.test_per_class} to test, 32 px, in memory)")
    print("| variant | --time | wall s | side | epochs | accuracy |")
    print("|---|---|---|---|---|---|")
    found: dict[tuple[str, str], list[dict]] = {}
    for budget in args.budgets.split(","):
        for round_ in range(args.rounds):
            order = list(VARIANTS.items())
            for label, flags in order if round_ % 2 == 0 else order[::-1]:
                row = run_once(data, [*flags, "--time", budget], work)
                found.setdefault((label, budget), []).append(row)
                side = row.get("image_size", ["?"])[0]
                print(f"| {label} | {budget} | {row['seconds']:.1f} | {side} | "
                      f"{row.get('epochs', '—')} | "
                      f"{row.get('accuracy', float('nan')):.2%} |", flush=True)
                with (work / "rows.jsonl").open("a") as handle:
                    handle.write(json.dumps({"variant": label, "budget": budget, **row})
                                 + "\n")
    if args.rounds > 1:
        medians({(label, "cifar10-bin", budget): rows
                 for (label, budget), rows in found.items()})


if __name__ == "__main__":
    main()
