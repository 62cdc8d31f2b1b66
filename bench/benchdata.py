"""Data and machine facts shared by the benchmark scripts (not part of the package)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import torch

import convnet
from convnet.data import Dataset, Split

# the shared CIFAR-10 JPEGs; CONVNET_CIFAR_JPG names another copy (the GPU machine's carry)
SHARED_CIFAR = Path(os.environ.get("CONVNET_CIFAR_JPG") or Path(__file__).resolve().parents[2]
                    / "shared" / "data" / "cifar10-jpg.tar.gz")


def machine() -> str:
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (f"{name}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads{gpu}, "
            f"torch {torch.__version__}, Python {platform.python_version()}")


def cpu_flags() -> str:
    """The CPU's vector-unit flags that decide which kernels (and precision) torch uses."""
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                present = set(line.split(":", 1)[1].split())
                return " ".join(flag for flag in wanted if flag in present) or "none of avx2+"
    except OSError:
        pass
    return "unknown"


def add_checkout(parser) -> None:
    """The ``--checkout`` option of a bench that can run another checkout (`checkout`)."""
    parser.add_argument("--checkout", type=Path, default=None,
                        help="another checkout whose convnet runs (default: this one)")


def checkout(tree: Path | None) -> tuple[dict[str, str], str]:
    """The environment that runs another checkout's convnet (its src/ first on the path)
    and that checkout's commit, or nothing and "this checkout" for None."""
    if tree is None:
        return {}, "this checkout"
    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=tree,
                            capture_output=True, text=True, check=True).stdout.strip()
    return {"PYTHONPATH": str(tree.resolve() / "src")}, commit


def append_row(results: Path, row: dict) -> None:
    """One result as a JSON line of ``results``, with the commit, the machine, its CPU flags
    and the date, as every bench's rows carry them (and the suite and case when the runner,
    `python -m bench`, started the script)."""
    from runner import commit

    stamped = {**row, "commit": commit(), "machine": machine(), "flags": cpu_flags(),
               "date": time.strftime("%Y-%m-%d"),
               **{key: os.environ[name] for key, name in (("suite", "BENCH_SUITE"),
                                                          ("case", "BENCH_CASE"))
                  if name in os.environ}}
    with Path(results).open("a") as handle:
        handle.write(json.dumps(stamped) + "\n")


def cifar_folder(path: Path = SHARED_CIFAR) -> Path:
    """A CIFAR-10 JPEG folder: ``path`` itself, or the .tar.gz extracted once to a temp dir."""
    if path.is_dir():
        return path
    target = Path(tempfile.gettempdir()) / f"convnet-bench-{path.name.split('.')[0]}"
    marker = target / ".extracted"
    if not marker.exists():
        started = time.perf_counter()
        with tarfile.open(path) as tar:
            tar.extractall(target, filter="data")
        marker.touch()
        print(f"extracted {path.name} to {target} in {time.perf_counter() - started:.1f}s")
    inner = [p for p in target.iterdir() if p.is_dir()]
    return inner[0] if len(inner) == 1 and not (target / "train").exists() else target


def load_cifar(path: Path = SHARED_CIFAR) -> Dataset:
    return convnet.datasets.load(str(cifar_folder(path)))


def subset(split: Split, count: int, seed: int = 0) -> Split:
    """The first ``count`` images of a seeded shuffle (all of them if fewer)."""
    if count >= len(split):
        return split
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:count]
    return split.subset(order)


def matmul_ceiling(size: int = 2048, repeats: int = 10) -> float:
    """Measured fp32 GFLOP/s of one large square matmul on the CPU: the machine's ceiling."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm-up: thread pool and MKL dispatch
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - started) / 1e9
