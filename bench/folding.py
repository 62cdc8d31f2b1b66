"""Forward passes with each batch norm folded into the convolution before it
(`convnet.network.folding`, what `Predictor` and the cached features run) against the network
as trained, interleaved, for EfficientNet-Lite0 and Lite2 at three sides, fp32 and bf16.

    python bench/folding.py
    python bench/folding.py --archs efficientnet-lite0 --sides 160 --rounds 5

Each measurement is a pass of as many images as `convnet.allocator.pass_size` gives a run
(31 at 160 px), channels-last, without autograd, with freed memory kept as the CLI keeps it;
the table gives the median ms per image over ``--rounds`` rounds (each round times both
ways in turn, for at least ``--seconds`` each), and the largest difference between the two
ways' logits. bf16 is timed only where the CPU has it natively. A second table times the
folded network at ``--batches`` beside the run's batch: what a speed probe at a smaller
batch would say of the run's passes (`convnet.plan.probe.passes_on` probes at the run's).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from benchdata import append_row, cpu_flags, machine
from convnet.allocator import keep_freed_memory, pass_size
from convnet.network import build
from convnet.network.folding import folded
from convnet.training.speed import autocast, native_bf16

HERE = Path(__file__).resolve().parent


def with_statistics(network: nn.Module) -> nn.Module:
    """Batch norms with running statistics of a trained network's spread."""
    generator = torch.Generator().manual_seed(0)
    for module in network.modules():
        if isinstance(module, nn.BatchNorm2d):
            size = module.num_features
            module.running_mean.copy_(torch.randn(size, generator=generator) * 0.5)
            module.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
    return network.eval()


def ms_per_image(network: nn.Module, x: torch.Tensor, dtype: torch.dtype | None, seconds: float
        ) -> float:
    """Milliseconds per image of passes over ``x``, after one untimed pass."""
    with torch.inference_mode(), autocast(torch.device("cpu"), dtype):
        network(x)
        count, started = 0, time.perf_counter()
        while count < 2 or time.perf_counter() - started < seconds:
            network(x)
            count += 1
    return (time.perf_counter() - started) / (count * len(x)) * 1000


def start() -> dict[str, torch.dtype | None]:
    """Set up as a run's passes are (freed memory kept, a fixed seed), print the machine,
    and return the precisions to time: bf16 only where the CPU has it natively."""
    keep_freed_memory()
    torch.manual_seed(0)
    print(f"machine: {machine()}; cpu flags: {cpu_flags()}", flush=True)
    return {"fp32": None, **({"bf16": torch.bfloat16}
                             if native_bf16(torch.device("cpu")) else {})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=["efficientnet-lite0",
                                                       "efficientnet-lite2"])
    parser.add_argument("--sides", nargs="+", type=int, default=[128, 160, 224])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--batches", nargs="*", type=int, default=[8, 16])
    parser.add_argument("--results", type=Path, default=HERE / "folding.jsonl")
    args = parser.parse_args()
    precisions = start()
    print("| network | side | batch | precision | as trained ms/image | folded | speed-up | "
          "largest logit difference |\n|---|---|---|---|---|---|---|---|", flush=True)
    for arch in args.archs:
        for side in args.sides:
            network = with_statistics(build(arch, (side, side, 3), 10))
            answer = folded(network)
            x = torch.rand(1, 3, side, side)
            x = torch.rand(pass_size(x, torch.device("cpu")), 3, side, side)
            x = x.contiguous(memory_format=torch.channels_last)  # (B, C, H, W)
            with torch.inference_mode():
                difference = float((network(x) - answer(x)).abs().max())
            for name, dtype in precisions.items():
                plain, fold = [], []
                for _ in range(args.rounds):
                    plain.append(ms_per_image(network, x, dtype, args.seconds))
                    fold.append(ms_per_image(answer, x, dtype, args.seconds))
                row = {"arch": arch, "side": side, "batch": len(x), "precision": name,
                       "plain_ms": round(statistics.median(plain), 3),
                       "folded_ms": round(statistics.median(fold), 3),
                       "difference": difference}
                append_row(args.results, row)
                print(f"| {arch} | {side} | {len(x)} | {name} | {row['plain_ms']:.2f} | "
                      f"{row['folded_ms']:.2f} | {row['plain_ms'] / row['folded_ms']:.2f}x | "
                      f"{difference:.1e} |", flush=True)
    if args.batches:
        _by_batch(args, precisions)


def _by_batch(args: argparse.Namespace, precisions: dict) -> None:
    """The folded network's ms per image at each of ``--batches``, as a multiple of the
    run's batch's."""
    print(f"\n| network | side | precision | run's batch: ms/image | "
          f"{' | '.join(f'batch {b}: x the run' for b in args.batches)} |\n"
          f"|---|---|---|---|{'---|' * len(args.batches)}", flush=True)
    for arch in args.archs:
        for side in args.sides:
            answer = folded(with_statistics(build(arch, (side, side, 3), 10)))
            answer = answer.to(memory_format=torch.channels_last)
            x = torch.rand(1, 3, side, side)
            full = pass_size(x, torch.device("cpu"))
            for name, dtype in precisions.items():
                sizes = [full, *args.batches]
                found = {size: statistics.median(ms_per_image(answer, _images(size, side), dtype,
                                                     args.seconds)
                                                 for _ in range(args.rounds))
                         for size in sizes}
                append_row(args.results, {"arch": arch, "side": side, "precision": name,
                                          "by_batch_ms": {str(k): round(v, 3)
                                                          for k, v in found.items()}})
                print(f"| {arch} | {side} | {name} | {found[full]:.2f} ({full}) | "
                      + " | ".join(f"{found[b] / found[full]:.2f}" for b in args.batches)
                      + " |", flush=True)


def _images(count: int, side: int) -> torch.Tensor:
    return torch.rand(count, 3, side, side).contiguous(memory_format=torch.channels_last)


if __name__ == "__main__":
    main()
