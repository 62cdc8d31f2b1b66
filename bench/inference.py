"""Inference speed: PyTorch eager (the `Predictor` every command uses) against onnxruntime
on the exported graph, for the digits default network and a CIFAR-sized one.

    python bench/inference.py --rounds 5

Both take uint8 images and return probabilities (normalisation and softmax included).
Batch 1: latency per call, p50 and p95 over `--calls` calls; batch 256: images/s, median of
the rounds. The two backends alternate call block by call block, so drift hits both.
Weights are the random initial ones: speed does not depend on their values.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import onnxruntime
import torch

import convnet
from benchdata import cpu_flags, machine
from convnet.data.pixels import Normalization
from convnet.export.graph import PixelModel
from convnet.export.onnx_model import write_graph
from convnet.runs.predictor import Predictor

NETWORKS = {"digits default (28×28×1)": ("default", (28, 28, 1)),
            "CIFAR small (32×32×3)": ("small", (32, 32, 3)),
            "CIFAR cifar-fast-cpu (32×32×3)": ("cifar-fast-cpu", (32, 32, 3))}


def _backends(spec: str, shape: tuple[int, int, int], work: Path):
    torch.manual_seed(0)
    network = convnet.build(spec, shape, 10).eval()
    height, width, channels = shape
    normalization = Normalization(torch.full((channels,), 0.5), torch.full((channels,), 0.25))
    if network.has_whitening:
        network.fit_whitening(torch.randn(256, channels, height, width))
    predictor = Predictor(network, normalization, [str(i) for i in range(10)])
    path = work / f"{spec}.onnx"
    write_graph(PixelModel(network, normalization, False).eval(), shape, path, 18, None)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def torch_side(images: torch.Tensor) -> None:  # (N, C, H, W) uint8
        predictor.probabilities(images)

    def onnx_side(images: torch.Tensor) -> None:
        session.run(["probabilities"], {"pixels": images.permute(0, 2, 3, 1).numpy()})
    return {"PyTorch eager": torch_side, "onnxruntime": onnx_side}


def _time(run, images: torch.Tensor, calls: int) -> list[float]:
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        run(images)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200, help="batch-1 calls per round")
    args = parser.parse_args()
    print(f"machine: {machine()}\ncpu flags: {cpu_flags()}\nonnxruntime "
          f"{onnxruntime.__version__}, {torch.get_num_threads()} torch threads")
    work = Path(tempfile.mkdtemp(prefix="convnet-inference-"))
    print("\n| network | backend | batch 1 p50 (ms) | batch 1 p95 (ms) | batch 1 images/s "
          "| batch 256 images/s |\n|---|---|---|---|---|---|")
    for label, (spec, shape) in NETWORKS.items():
        backends = _backends(spec, shape, work)
        one = torch.randint(0, 256, (1, shape[2], shape[0], shape[1]), dtype=torch.uint8)
        many = torch.randint(0, 256, (256, shape[2], shape[0], shape[1]), dtype=torch.uint8)
        single = {name: [] for name in backends}
        batched = {name: [] for name in backends}
        for run in backends.values():  # warm-up
            _time(run, one, 20)
            _time(run, many, 2)
        for _ in range(args.rounds):
            for name, run in backends.items():
                single[name] += _time(run, one, args.calls)
                batched[name].append(256 / statistics.median(_time(run, many, 5)))
        for name in backends:
            latencies = sorted(single[name])
            p50, p95 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.95)]
            print(f"| {label} | {name} | {p50 * 1000:.3f} | {p95 * 1000:.3f} | {1 / p50:,.0f} "
                  f"| {statistics.median(batched[name]):,.0f} |", flush=True)


if __name__ == "__main__":
    main()
