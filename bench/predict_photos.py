"""`convnet predict imagenet FOLDER` as a user runs it, three ways, interleaved round by
round: the torch backend with glibc's allocator left alone (``CONVNET_MALLOC=system``),
the torch backend as convnet sets it (freed blocks kept for reuse, `convnet.allocator`),
and ``--backend onnx`` (the same network exported, in onnxruntime).

    python bench/predict_photos.py --rounds 3            # 400 CIFAR cat/dog test photos
    python bench/predict_photos.py --folder DIR --rounds 3

Each is a fresh process timed from start to exit; user and kernel (system) seconds come
from the kernel's accounting of the child. Medians over the rounds.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchdata import append_row, cpu_flags, machine
from finetune_pairs import catdog

HERE = Path(__file__).resolve().parent
WAYS = {"torch, system malloc": (["--backend", "torch"], {"CONVNET_MALLOC": "system"}),
        "torch (convnet's default)": (["--backend", "torch"], {}),
        "onnx": (["--backend", "onnx"], {})}


def _timed(flags: list[str], env: dict, folder: Path) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "convnet", "predict", "imagenet", str(folder),
                           "--csv", *flags], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=3600)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(done.stderr.strip().splitlines()[-1])
    return {"wall": wall, "user": after.ru_utime - before.ru_utime,
            "system": after.ru_stime - before.ru_stime,
            "images": len(done.stdout.strip().splitlines()) - 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--results", type=Path, default=HERE / "predict_photos.jsonl")
    args = parser.parse_args()
    print(f"machine: {machine()}; cpu flags: {cpu_flags()}", flush=True)
    folder = args.folder or Path(catdog(Path(tempfile.mkdtemp(prefix="convnet-predict-")))) / "test"
    subprocess.run([sys.executable, "-m", "convnet", "export", "imagenet", "--force"],
                   capture_output=True, check=True, timeout=1800)  # for --backend onnx
    _timed(WAYS["onnx"][0], {}, folder)  # warm: the cache, the page cache
    found: dict[str, list[dict]] = {name: [] for name in WAYS}
    for _ in range(args.rounds):
        for name, (flags, env) in WAYS.items():
            found[name].append(_timed(flags, env, folder))
    print(f"\n`convnet predict imagenet` on {found['onnx'][0]['images']} photos of {folder}, "
          f"median of {args.rounds} rounds\n\n| way | wall s | user s | system s | images/s |"
          "\n|---|---|---|---|---|")
    for name, rows in found.items():
        median = {key: statistics.median(row[key] for row in rows)
                  for key in ("wall", "user", "system")}
        append_row(args.results, {"way": name, "images": rows[0]["images"], **median})
        print(f"| {name} | {median['wall']:.1f} | {median['user']:.1f} | "
              f"{median['system']:.1f} | {rows[0]['images'] / median['wall']:.1f} |")


if __name__ == "__main__":
    main()
