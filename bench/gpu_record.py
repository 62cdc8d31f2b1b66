"""The CIFAR-10 record on a GPU: convnet's `cifar-fast` recipe against airbench94, on the
same GPU in the same process, 5 seeds each, timed the same way (issue 28).

    python3 bench/gpu_record.py --data /tmp/cifar --seeds 5 --out $OUT/record.jsonl
    python3 bench/gpu_record.py --data /tmp/cifar --dry   # a CPU check of this script

Both read the same images: the shared CIFAR-10 JPEG folder (train/ and test/), decoded
once. airbench gets them as its own ``cifar10/train.pt`` and ``test.pt`` (uint8 NHWC, the
format its loader saves), written here from the folder. Each side warms up once (compile,
cuDNN autotuning, the decode cache), untimed. Then for each seed, CUDA events time the
call that trains and scores on the test split: `convnet.make.fit` for convnet (training,
its test evaluation and writing the run) and `airbench.train94` (training and its own
test-time-augmented evaluation). Accuracy is each one's own test score. Rows are appended
to --out as JSON lines, and the summary (means, the time ratio) is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

import convnet
from convnet.make import fit
from convnet.training.config import TrainConfig


def _timed(call):
    """(result, seconds): CUDA events around ``call`` on a GPU, the wall clock elsewhere."""
    if torch.cuda.is_available():
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        result = call()
        end.record()
        torch.cuda.synchronize()
        return result, start.elapsed_time(end) / 1000
    began = time.perf_counter()
    result = call()
    return result, time.perf_counter() - began


def convnet_runs(data: str, seeds: list[int], options: dict, root: Path) -> list[dict]:
    dataset = convnet.datasets.load(data)
    rows = []
    for seed in [-1, *seeds]:  # -1: the warm-up (compile, autotuning), not reported
        config = TrainConfig.from_dict({"data": data, **options, "seed": max(seed, 0)})
        result, seconds = _timed(lambda c=config, s=seed: fit(dataset, c, root / f"run{s}"))
        if seed >= 0:
            rows.append({"system": "convnet cifar-fast", "seed": seed,
                         "accuracy": result.test.accuracy, "seconds": round(seconds, 3)})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def _airbench_files(data: str, folder: Path) -> None:
    """airbench's ``train.pt``/``test.pt`` (its loader's own format) from our decode."""
    dataset = convnet.datasets.load(data)
    folder.mkdir(parents=True, exist_ok=True)
    for name, split in (("train", dataset.train), ("test", dataset.test)):
        torch.save({"images": split.images.permute(0, 2, 3, 1).contiguous(),  # NHWC uint8
                    "labels": split.labels, "classes": dataset.classes},
                   folder / f"{name}.pt")


def airbench_runs(data: str, seeds: list[int], root: Path) -> list[dict]:
    try:
        import airbench
    except ImportError:
        print("airbench is not installed: its rows are left out", flush=True)
        return []
    _airbench_files(data, root / "cifar10")
    os.chdir(root)  # airbench reads ./cifar10/
    loader = airbench.CifarLoader("cifar10", train=True, batch_size=1024,
                                  aug={"flip": True, "translate": 2}, altflip=True)
    test = airbench.CifarLoader("cifar10", train=False, batch_size=2000)
    airbench.warmup94(train_loader=loader, verbose=False)
    rows = []
    for seed in seeds:
        model, seconds = _timed(lambda s=seed: airbench.train94(train_loader=loader, run=s,
                                                                verbose=False))
        rows.append({"system": "airbench94", "seed": seed,
                     "accuracy": airbench.evaluate(model, test, tta_level=2),
                     "seconds": round(seconds, 3)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def summary(rows: list[dict]) -> dict:
    found = {}
    for system in sorted({r["system"] for r in rows}):
        mine = [r for r in rows if r["system"] == system]
        found[system] = {"mean_accuracy": round(statistics.mean(r["accuracy"] for r in mine), 4),
                         "mean_seconds": round(statistics.mean(r["seconds"] for r in mine), 3),
                         "runs": len(mine)}
    if len(found) == 2:
        found["time_ratio"] = round(found["convnet cifar-fast"]["mean_seconds"] /
                                    found["airbench94"]["mean_seconds"], 3)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the CIFAR-10 JPEG folder")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("record.jsonl"))
    parser.add_argument("--dry", action="store_true",
                        help="a CPU check: one seed, one epoch of the CPU recipe")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="convnet-record-"))
    seeds = [0] if args.dry else list(range(args.seeds))
    options = {"recipe": "cifar-fast-cpu", "epochs": 1, "device": "cpu"} if args.dry else \
        {"recipe": "cifar-fast", "device": "cuda"}
    rows = convnet_runs(args.data, seeds, options, root)
    if not args.dry:
        rows += airbench_runs(args.data, seeds, root)
    result = {"rows": rows, "summary": summary(rows), "dry": args.dry,
              "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
              "torch": torch.__version__, "date": time.strftime("%Y-%m-%d")}
    print(json.dumps(result["summary"], indent=1), flush=True)
    with args.out.open("a") as handle:
        handle.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
