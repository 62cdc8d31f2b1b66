"""The new head on ImageNet features: 30 AdamW epochs (the way a deeper head is trained)
against logistic regression with its L2 strength cross-validated (`convnet.training.
linear_head`, how a head of one fully connected layer is fitted), on the same features.

    python bench/head_fit.py                          # cat/dog, six, four at 128 px
    python bench/head_fit.py --only catdog --side 160 --draws 4

Per folder (the CIFAR photo folders of bench/time_to_accuracy.py): EfficientNet-Lite0's
pooled features of the training and test images, computed once (bf16 where the CPU has it,
as a run computes them); then, for each of ``--draws`` random 80% draws of the training
images (the run's validation split is 20%), both heads fitted on the draw's features and
scored on the test images, one view (no flip). The seconds are the fits' alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchdata import append_row, cpu_flags, machine
from time_to_accuracy import FOLDERS
from zoo_data import materialize

HERE = Path(__file__).resolve().parent


def _features(folder: Path, side: int) -> dict[str, torch.Tensor]:
    import convnet
    from convnet.training.finetune import features, load_into
    from convnet.training.pretrained import imagenet_start
    from convnet.training.speed import autocast_dtype

    dataset = convnet.datasets.load(str(folder), image_size=side)
    start = imagenet_start("efficientnet-lite0")
    network = convnet.build("efficientnet-lite0", (side, side, 3), len(dataset.classes))
    load_into(network, start)
    cpu = torch.device("cpu")
    dtype = autocast_dtype("auto", cpu)
    found = {name: features(network, split.images, start.normalization, "bench-head",
                            cpu, dtype) for name, split in (("train", dataset.train),
                                                            ("test", dataset.test))}
    return {**found, "y": dataset.train.labels, "yt": dataset.test.labels,
            "classes": torch.tensor(len(dataset.classes))}


def _heads(found: dict[str, torch.Tensor], draw: int) -> dict[str, float]:
    import convnet
    from convnet.data.dataset import Split
    from convnet.training.finetune import _adamw, fit_head

    labels, count = found["y"], len(found["y"])
    kept = torch.randperm(count, generator=torch.Generator().manual_seed(draw))
    kept = kept[: int(count * 0.8)]
    dims, classes = found["train"].shape[1], int(found["classes"])
    split = Split(torch.zeros(len(kept), 3, 1, 1, dtype=torch.uint8), labels[kept])
    row: dict[str, float] = {}
    for name in ("adamw", "logistic"):
        # a head of one fully connected layer on the pooled features (N, D, 1, 1)
        network = convnet.build(f"conv{dims}k1-gap-fc", (4, 4, 3), classes)
        began = time.perf_counter()
        if name == "adamw":  # how the head was fitted before: 30 epochs, batches of 64
            _adamw(network, split, found["train"][kept], 30, 0.0, draw)
        else:
            fit_head(network, split, found["train"][kept], 30, 0.0, draw)
        row[f"{name}_seconds"] = round(time.perf_counter() - began, 2)
        with torch.no_grad():
            logits = network.forward_head(found["test"])  # (N, classes)
        row[name] = float((logits.argmax(1) == found["yt"]).float().mean())
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", default=["catdog", "six", "four"],
                        choices=sorted(FOLDERS))
    parser.add_argument("--side", type=int, default=128)
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) / "zoo")
    parser.add_argument("--results", type=Path, default=HERE / "head_fit.jsonl")
    args = parser.parse_args()
    print(f"machine: {machine()}; cpu flags: {cpu_flags()}", flush=True)
    # a cache of its own: the features are computed here, not read from an earlier run's
    os.environ["CONVNET_CACHE"] = tempfile.mkdtemp(prefix="convnet-head-")
    print("| folder | side | AdamW, 30 epochs | logistic regression | fit s (AdamW / "
          "logistic) |\n|---|---|---|---|---|", flush=True)
    for name in args.only:
        found = _features(Path(materialize(FOLDERS[name], args.root)), args.side)
        rows = [_heads(found, draw) for draw in range(args.draws)]
        summary = {key: [row[key] for row in rows] for key in rows[0]}
        append_row(args.results, {"folder": name, "side": args.side, **summary})
        adamw, logistic = summary["adamw"], summary["logistic"]
        print(f"| {name} | {args.side} | {min(adamw):.1%}-{max(adamw):.1%} | "
              f"{min(logistic):.1%}-{max(logistic):.1%} | "
              f"{statistics.median(summary['adamw_seconds']):.2f} / "
              f"{statistics.median(summary['logistic_seconds']):.2f} |", flush=True)


if __name__ == "__main__":
    main()
