"""How the `convnet train` default was chosen: candidate recipes on the built-in digits, over
several seeds, with test accuracy and training time.

    python bench/digits_default.py                    # every candidate, seeds 0-2
    python bench/digits_default.py --only chosen,previous --seeds 5

Each candidate changes a few options of the current defaults (`TrainConfig()`); "chosen" is
the defaults themselves. Time is `fit` (training, evaluation, saving), without Python
start-up and data loading, which add about 3 s to the `convnet train` wall time.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import convnet
from benchdata import machine
from convnet.make import fit
from convnet.training.config import TrainConfig

PREVIOUS = "conv16k5-bn-relu-maxpool2-conv32k5-bn-relu-maxpool2-fc128-relu-dropout0.3-fc"
CANDIDATES: dict[str, dict] = {
    "chosen": {},
    "previous": {"arch": PREVIOUS, "epochs": 12, "lr": 3e-3, "ema": 0.0},
    "previous, 16 epochs": {"arch": PREVIOUS, "epochs": 16, "lr": 3e-3, "ema": 0.0},
    "previous, no validation split": {"arch": PREVIOUS, "epochs": 12, "lr": 3e-3,
                                      "ema": 0.0, "val_split": 0.0},
    "previous, rotate 10": {"arch": PREVIOUS, "lr": 3e-3, "ema": 0.0, "rotate": 10.0},
    "previous, crop 0.85": {"arch": PREVIOUS, "lr": 3e-3, "ema": 0.0, "crop_scale": 0.85},
    "no EMA": {"ema": 0.0},
    "lr 5e-3, no EMA": {"lr": 5e-3, "ema": 0.0},
    "EMA 0.9": {"ema": 0.9},
    "16 epochs": {"epochs": 16},
    "wider convs (20/40)": {
        "arch": "conv20k5-bn-relu-maxpool2-conv40k5-bn-relu-maxpool2-fc256-relu-dropout0.5-fc"},
    # tried again with the planner (issue 12), for digits at >= 99.0% within +20% time
    "18 epochs": {"epochs": 18},
    "fp32": {"precision": "fp32"},
    "batch 64": {"batch_size": 64},
    "batch 256, 18 epochs": {"batch_size": 256, "epochs": 18},
    "rotate 10": {"rotate": 10.0},
    "shift 3": {"shift": 3},
    "weight decay 0.05": {"weight_decay": 0.05},
    "no label smoothing": {"label_smoothing": 0.0},
    "lr 4e-3": {"lr": 4e-3},
    "EMA over ~2 epochs": {"ema": 0.993},
    "sgd": {"optimizer": "sgd"},
    "cosine": {"schedule": "cosine"},
    "no validation split": {"val_split": 0.0},
    "convs 16/48": {
        "arch": "conv16k5-bn-relu-maxpool2-conv48k5-bn-relu-maxpool2-fc256-relu-dropout0.5-fc"},
    "convs 32/32": {
        "arch": "conv32k5-bn-relu-maxpool2-conv32k5-bn-relu-maxpool2-fc256-relu-dropout0.5-fc"},
    "fc 512": {
        "arch": "conv16k5-bn-relu-maxpool2-conv32k5-bn-relu-maxpool2-fc512-relu-dropout0.5-fc"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated candidate names")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(CANDIDATES)
    unknown = [name for name in names if name not in CANDIDATES]
    if unknown:
        parser.error(f"unknown candidate(s) {unknown}; known: {list(CANDIDATES)}")
    print(f"machine: {machine()}")
    data = convnet.datasets.load("digits")
    out = Path(tempfile.mkdtemp(prefix="convnet-digits-"))
    for name in names:
        accuracies, seconds = [], []
        for seed in range(args.seeds):
            config = TrainConfig(**{**CANDIDATES[name], "seed": seed})
            started = time.perf_counter()
            result = fit(data, config, out=out / f"{len(list(out.iterdir()))}")
            seconds.append(time.perf_counter() - started)
            accuracies.append(result.test.accuracy)
        print(f"{name:<32} mean {statistics.mean(accuracies):.2%}  per seed "
              f"{' '.join(f'{a:.2%}' for a in accuracies)}  {statistics.mean(seconds):.1f} s",
              flush=True)


if __name__ == "__main__":
    main()
