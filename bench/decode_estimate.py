"""The plan's estimate of a folder's decoding against the load itself, in a fresh cache.

    python bench/decode_estimate.py                 # six, cat/dog, large files
    python bench/decode_estimate.py --checkout /tmp/old   # another checkout's estimate

Per folder (bench/time_to_accuracy.py's photo folders, and bench/unusual_folders.py's
600 large PNGs and JPEGs): `plan.loading.decoding_seconds` (a sample of files timed here,
times `DECODE_OVERHEAD`, over the cores), then `convnet.datasets.load` at 160 px in an
empty cache, timed. Each in its own process, so no file is warm from the other.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchdata import add_checkout, append_row, checkout, cpu_flags, machine
from time_to_accuracy import FOLDERS
from unusual_folders import FOLDERS as UNUSUAL
from zoo_data import materialize

HERE = Path(__file__).resolve().parent
MEASURE = """
import json, sys, time
from convnet import datasets
from convnet.data.fingerprint import of_layout
from convnet.plan.loading import decoding_seconds
layout = datasets.folder_layout(sys.argv[1])
estimate = decoding_seconds(layout, of_layout(layout))
began = time.perf_counter()
datasets.load(sys.argv[1], image_size=160)
print(json.dumps({"estimate_s": estimate, "load_s": time.perf_counter() - began,
                  "files": len(layout.entries)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) / "zoo")
    add_checkout(parser)
    parser.add_argument("--results", type=Path, default=HERE / "decode_estimate.jsonl")
    args = parser.parse_args()
    found, code = checkout(args.checkout)
    env = {**os.environ, **found}
    print(f"machine: {machine()}; cpu flags: {cpu_flags()}; convnet: {code}", flush=True)
    print("| folder | files | estimate s | load s | estimate / load |\n|---|---|---|---|---|",
          flush=True)
    folders = {"six": FOLDERS["six"], "catdog": FOLDERS["catdog"],
               "large-files": UNUSUAL["large-files"]}
    for name, entry in folders.items():
        data = materialize(entry, args.root)
        cache = tempfile.mkdtemp(prefix="convnet-decode-")
        done = subprocess.run([sys.executable, "-c", MEASURE, data], capture_output=True,
                              text=True, check=True, env={**env, "CONVNET_CACHE": cache})
        row = json.loads(done.stdout.strip().splitlines()[-1])
        append_row(args.results, {"folder": name, "code": code, **row})
        print(f"| {name} | {row['files']:,} | {row['estimate_s']:.2f} | {row['load_s']:.2f} | "
              f"{row['estimate_s'] / row['load_s']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
