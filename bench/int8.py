"""int8 for shipping: `convnet export RUN --int8` against the float file, on the run's test
images, for runs a user would make.

    python bench/int8.py digits     # the no-option digits run
    python bench/int8.py photos     # a car/truck photo folder fine-tuned from ImageNet
    python bench/int8.py --run RUN  # a run you have

Each run is trained by a fresh `convnet train` process, then quantized in this one; the
figures are those `quantize_int8` measures and keeps in the file's metadata: accuracy of
both files on the same test images, the share of top classes that agree, and the median
time of a batch of 32 in onnxruntime. A drop over one point is written down, not refused
(``accept_drop``): this measures, it does not ship.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from benchdata import append_row, cpu_flags, machine

HERE = Path(__file__).resolve().parent


def _trained(kind: str, root: Path) -> Path:
    out = root / f"{kind}-run"
    if kind == "digits":
        data, flags = "digits", []
    else:
        from finetune_pairs import PAIRS
        from zoo_data import materialize

        data, flags = materialize(PAIRS["cartruck"], root), ["--init", "imagenet"]
    done = subprocess.run([sys.executable, "-m", "convnet", "train", "--data", data, "--out",
                           str(out), "--no-report", *flags], capture_output=True, text=True,
                          timeout=7200)
    if done.returncode != 0:
        raise SystemExit(done.stderr.strip().splitlines()[-1])
    return out


def measure(run: Path, kind: str) -> dict:
    from convnet.export.int8 import quantize_int8

    done = quantize_int8(run, Path(tempfile.mkdtemp(prefix="convnet-int8-")) /
                         "model.int8.onnx", accept_drop=True)
    arch = json.loads((run / "model.json").read_text())["arch"]
    return {"kind": kind, "arch": arch, **done.report.to_dict()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kinds", nargs="*", metavar="digits|photos", default=[])
    parser.add_argument("--run", type=Path, help="a finished run folder to quantize")
    parser.add_argument("--results", type=Path, default=HERE / "int8.jsonl")
    args = parser.parse_args()
    wrong = [kind for kind in args.kinds if kind not in ("digits", "photos")]
    if wrong or not (args.kinds or args.run):
        parser.error(f"give digits, photos or --run RUN (received {wrong or 'nothing'})")
    print(f"machine: {machine()}; cpu flags: {cpu_flags()}", flush=True)
    root = Path(tempfile.mkdtemp(prefix="convnet-int8-bench-"))
    runs = [(kind, _trained(kind, root)) for kind in args.kinds]
    runs += [("given", args.run)] if args.run else []
    print("| run | arch | test images | accuracy fp32 | int8 | drop | top-1 agree | batch of "
          "32 fp32 | int8 | speed-up | MB fp32 | int8 |\n|---|---|---|---|---|---|---|---|---|"
          "---|---|---|")
    for kind, run in runs:
        row = measure(run, kind)
        append_row(args.results, row)
        print(f"| {kind} | {row['arch']} | {row['test_images']} | {row['accuracy_fp32']:.2%} | "
              f"{row['accuracy_int8']:.2%} | {row['drop']:+.2%} | {row['agree']:.1%} | "
              f"{row['seconds_fp32'] * 1000:.1f} ms | {row['seconds_int8'] * 1000:.1f} ms | "
              f"{row['speedup']:.2f}x | {row['bytes_fp32'] / 1e6:.1f} | "
              f"{row['bytes_int8'] / 1e6:.1f} |", flush=True)


if __name__ == "__main__":
    main()
