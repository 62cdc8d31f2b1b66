"""The head alone, refitted with its validation images: a run with no epochs fits its head
on the training images, scores it on the validation images (the calibration, the
prediction sets and the "unknown" detector's threshold come from those scores), then fits
it again on both at the strength its folds chose (`convnet.training.setup._refit`). This
measures what the refit changes on the test images.

    python bench/head_refit.py                        # six at 96 px, cat/dog at 160 px
    python bench/head_refit.py --only catdog --sides 160 --draws 5
    python bench/head_refit.py --only large-files imbalanced   # bench/unusual_folders.py's

Per folder (the CIFAR photo folders of bench/time_to_accuracy.py, or of
bench/unusual_folders.py): EfficientNet-Lite0's
embeddings of both views of every training image, computed once at the run's precision
(bf16 where the CPU has it), and of the test images in fp32, as a run computes them; then,
for each of ``--draws`` random draws of the run's validation share, the head fitted on
the rest, its temperature and conformal scores fitted on the drawn images' logits (fp32
embeddings, the views averaged), and scored on the test images; then refitted on all of
them with the same calibration. Each row: test accuracy, expected calibration error, and
the share of the test images whose 90% prediction set holds the true class.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

import torch

from benchdata import append_row, cpu_flags, machine
from time_to_accuracy import FOLDERS
from unusual_folders import FOLDERS as UNUSUAL
from unusual_folders import _derive
from zoo_data import materialize

HERE = Path(__file__).resolve().parent
# what a tenth of the loop's time plans, and `--time 10s` on bench/unusual_folders.py's
SIDES = {"six": 96, "catdog": 160, "four": 128, "imbalanced": 96, "large-files": 96,
         "ten-small": 96, "tiny": 128}


def _folder(name: str, root: Path) -> Path:
    if name in FOLDERS:
        return Path(materialize(FOLDERS[name], root))
    return _derive(name, Path(materialize(UNUSUAL[name], root)))


def _embedded(folder: Path, side: int) -> dict:
    import convnet
    from convnet.training.finetune import embeddings, load_into
    from convnet.training.pretrained import imagenet_start
    from convnet.training.speed import autocast_dtype

    dataset = convnet.datasets.load(str(folder), image_size=side)
    start = imagenet_start("efficientnet-lite0")
    network = convnet.build("efficientnet-lite0", (side, side, 3), len(dataset.classes))
    load_into(network, start)
    cpu = torch.device("cpu")

    def seen(images: torch.Tensor, dtype) -> torch.Tensor:  # (2, N, D)
        return embeddings(network, images, start.normalization, "bench-refit", cpu, dtype,
                          2)[0]
    return {"network": network, "train": seen(dataset.train.images, autocast_dtype(
        "auto", cpu)), "train32": seen(dataset.train.images, None),
        "test": seen(dataset.test.images, None), "y": dataset.train.labels,
        "yt": dataset.test.labels}


def _scored(network, found: torch.Tensor, labels: torch.Tensor, calibration) -> list[float]:
    from convnet.runs.calibration import coverage, expected_calibration_error

    with torch.no_grad():  # (N, classes): the views' logits averaged, as the run answers
        logits = torch.stack([network.classifier(view) for view in found]).mean(0)
    probabilities = calibration.scale(logits.double()).softmax(1)
    held = coverage(calibration, logits, labels, 0.9)[0] if calibration.conformal else \
        float("nan")  # too few validation images for a temperature and sets
    return [float((logits.argmax(1) == labels).float().mean()),
            expected_calibration_error(probabilities, labels), held]


def _draw(found: dict, draw: int) -> dict[str, list[float]]:
    import copy

    from convnet.data import balance
    from convnet.data.dataset import validation_share
    from convnet.runs.calibration import calibrate
    from convnet.training.linear_head import fit_linear

    labels, count = found["y"], len(found["y"])
    order = torch.randperm(count, generator=torch.Generator().manual_seed(draw))
    held = round(count * validation_share(None, count))
    val, kept = order[:held], order[held:]
    network = copy.deepcopy(found["network"])
    # each class weighed as the run's default balance weighs it (a folder past 1.5 to 1)
    counts = balance.class_counts(labels[kept], network.num_classes)
    weights = None if balance.choose("auto", counts) == "none" else \
        balance.loss_weights(counts)
    _, strength = fit_linear(network, found["train"][:, kept], labels[kept], 0.0, draw,
                             weights)
    with torch.no_grad():
        logits = torch.stack([network.classifier(view)
                              for view in found["train32"][:, val]]).mean(0)
    calibration = calibrate(logits, labels[val])
    row = {"held_out": _scored(network, found["test"], found["yt"], calibration)}
    both = torch.cat([found["train"][:, kept], found["train32"][:, val]], dim=1)
    fit_linear(network, both, torch.cat([labels[kept], labels[val]]), 0.0, draw, weights,
               strength)
    row["refit"] = _scored(network, found["test"], found["yt"], calibration)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", default=["six", "catdog"], choices=sorted(SIDES))
    parser.add_argument("--sides", nargs="+", type=int, help="one per folder (default: "
                        "the side a tenth of the loop's time plans)")
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) / "zoo")
    parser.add_argument("--results", type=Path, default=HERE / "head_refit.jsonl")
    args = parser.parse_args()
    sides = args.sides or [SIDES[name] for name in args.only]
    if len(sides) != len(args.only):
        parser.error(f"give one side per folder (received {len(sides)} for "
                     f"{len(args.only)})")
    print(f"machine: {machine()}; cpu flags: {cpu_flags()}", flush=True)
    os.environ["CONVNET_CACHE"] = tempfile.mkdtemp(prefix="convnet-refit-")
    print("| folder | side | head | test accuracy (mean, range) | calibration error | 90% "
          "sets hold |\n|---|---|---|---|---|---|", flush=True)
    for name, side in zip(args.only, sides):
        found = _embedded(_folder(name, args.root), side)
        rows = [_draw(found, draw) for draw in range(args.draws)]
        append_row(args.results, {"folder": name, "side": side, "draws": rows})
        for head in ("held_out", "refit"):
            accuracy, error, held = ([row[head][index] for row in rows] for index in range(3))
            print(f"| {name} | {side} | {head.replace('_', '-')} | "
                  f"{statistics.mean(accuracy):.1%} ({min(accuracy):.1%}-{max(accuracy):.1%})"
                  f" | {statistics.mean(error):.3f} | {statistics.mean(held):.3f} |",
                  flush=True)


if __name__ == "__main__":
    main()
