"""Data time on a folder of JPEGs: the cold scan+decode+cache pass against later epochs/runs.

    python bench/folder_data.py                       # the shared CIFAR-10 JPEG folder
    python bench/folder_data.py --folder PATH --epochs 2
    sudo python bench/folder_data.py --cold           # files read from disk, not memory

Prints: files/s of the first pass (scan, decode, write the uint8 cache), the time of a second
load that reads the cache, and the data time (batch assembly + augmentation) of epochs 1
and 2. The first epoch's data time includes the first pass, as a user waits for both.
"""

from __future__ import annotations

import argparse
import os
import platform
import tarfile
import tempfile
import time
from pathlib import Path

import torch

from convnet.data.folders import load_folder
from convnet.make import fit
from convnet.training.config import TrainConfig

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpg.tar.gz"


def extract(archive: Path, into: Path) -> Path:
    started = time.perf_counter()
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    print(f"extracted {archive.name} in {time.perf_counter() - started:.1f}s")
    return into


def drop_page_cache() -> None:
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        print("page cache dropped: the first pass reads from disk")
    except OSError as error:
        print(f"could not drop the page cache ({error}); the first pass may read from memory")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, help="folder dataset (default: extract CIFAR)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--arch", default="small")
    parser.add_argument("--cold", action="store_true",
                        help="drop the OS page cache first (root on Linux), so the first pass "
                             "reads the files from disk as a user's first run does")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="convnet-bench-"))
    os.environ["CONVNET_CACHE"] = str(work / "cache")  # a cold cache, whatever the user has
    folder = args.folder or extract(SHARED, work / "cifar")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    if args.cold:
        drop_page_cache()
    cold = load_folder(folder)
    files = sum(sum(counts) for counts in cold.report.counts.values()) + \
        len(cold.report.problems)
    print(f"first pass: {files:,} files scanned, decoded and cached in "
          f"{cold.report.seconds:.1f}s = {files / cold.report.seconds:,.0f} files/s")
    warm = load_folder(folder)
    assert warm.report.cached and torch.equal(warm.train.images, cold.train.images)
    print(f"second load (cache): {warm.report.seconds:.2f}s, "
          f"{cold.report.seconds / warm.report.seconds:.0f}× faster")

    config = TrainConfig(data=str(folder), arch=args.arch, epochs=args.epochs)
    result = fit(warm, config, out=work / "run")
    epoch_data = [stats.data_seconds for stats in result.history]
    first = cold.report.seconds + epoch_data[0]
    print(f"epoch 1 data time: {first:.1f}s (first pass {cold.report.seconds:.1f}s + batches "
          f"{epoch_data[0]:.2f}s)")
    for number, seconds in enumerate(epoch_data[1:], start=2):
        print(f"epoch {number} data time: {seconds:.2f}s  ({first / seconds:.0f}× faster "
              f"than epoch 1)")
    print(f"epoch times: {', '.join(f'{s.seconds:.1f}s' for s in result.history)}; "
          f"val acc {result.history[-1].val_acc:.4f}")


if __name__ == "__main__":
    main()
