"""The answering network's passes with its weights as a saved run reads them (torch's
default layout) against channels-last weights (`convnet.network.folding.folded`), both on
channels-last batches as `Predictor` sends them, for networks of gray and RGB images.

    python bench/layout.py
    python bench/layout.py --rounds 5 --seconds 1

A network of one input channel ran every layer in NCHW on such batches while its weights
were in the default layout: its first convolution's input and weights read as either
layout, and torch takes NCHW. Each row gives the median ms per image over ``--rounds``
rounds (both ways in turn, at least ``--seconds`` each), at the batch a run's passes take
(`convnet.allocator.pass_size`), and the largest difference between the two ways' logits.
bf16 is timed only where the CPU has it natively.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from benchdata import append_row
from convnet.allocator import pass_size
from convnet.network import build
from convnet.network.folding import folded
from folding import ms_per_image, start, with_statistics

HERE = Path(__file__).resolve().parent
# (network, H, W, C): the built-in digits' default, a 64 px network of the designer's
# kind, EfficientNet-Lite0 on gray photos; and RGB ones, where both ways should agree
NETWORKS = [("default", 28, 28, 1), ("small", 64, 64, 1), ("efficientnet-lite0", 128, 128, 1),
            ("default", 32, 32, 3), ("small", 64, 64, 3)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--results", type=Path, default=HERE / "layout.jsonl")
    args = parser.parse_args()
    precisions = start()
    print("| network | input | batch | precision | default-layout weights ms/image | "
          "channels-last | speed-up | largest logit difference |\n"
          "|---|---|---|---|---|---|---|---|", flush=True)
    for arch, height, width, channels in NETWORKS:
        network = with_statistics(build(arch, (height, width, channels), 10))
        saved = folded(network)  # as a run read from its file answered before
        answer = folded(network, torch.channels_last)
        x = torch.rand(1, channels, height, width)
        x = torch.rand(pass_size(x, torch.device("cpu")), channels, height, width)
        x = x.contiguous(memory_format=torch.channels_last)  # (B, C, H, W)
        with torch.inference_mode():
            difference = float((saved(x) - answer(x)).abs().max())
        for name, dtype in precisions.items():
            plain, laid = [], []
            for _ in range(args.rounds):
                plain.append(ms_per_image(saved, x, dtype, args.seconds))
                laid.append(ms_per_image(answer, x, dtype, args.seconds))
            row = {"arch": arch, "input": [height, width, channels], "batch": len(x),
                   "precision": name, "default_ms": round(statistics.median(plain), 4),
                   "channels_last_ms": round(statistics.median(laid), 4),
                   "difference": difference}
            append_row(args.results, row)
            print(f"| {arch} | {height}×{width}×{channels} | {len(x)} | {name} | "
                  f"{row['default_ms']:.3f} | {row['channels_last_ms']:.3f} | "
                  f"{row['default_ms'] / row['channels_last_ms']:.2f}x | {difference:.1e} |",
                  flush=True)


if __name__ == "__main__":
    main()
