"""The measurements behind convnet's speed defaults: one training step of a network under each
switch, interleaved rounds, median images/s.

    python bench/step_choices.py                  # the Keras example net, batch 128
    python bench/step_choices.py --net default --rounds 9
    python bench/step_choices.py --compile        # also torch.compile (slow to start)

Each row changes one thing against convnet's default step (channels-last, max pooling run
before the activation, byte-mask dropout, fused Adam, fp32). The rows are timed in turns,
round after round, so a noisy neighbour on a shared VM hits them all alike.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

import convnet
from benchdata import machine
from convnet.network.presets import spec_for

NETS = {"keras": ("keras-mnist", "28x28x1"), "default": ("default", "28x28x1"),
        "small": ("small", "32x32x3"), "cifar-fast-cpu": ("cifar-fast-cpu", "32x32x3")}


class _Literal(nn.Module):
    """The network's modules run in the spec's order (activation before pooling)."""

    def __init__(self, network: convnet.Network):
        super().__init__()
        self.body = network.body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for module in self.body:
            x = module(x)
        return x


def make_step(arch: str, shape: str, batch: int, *, channels_last: bool = True,
              reorder: bool = True, byte_dropout: bool = True, fused: bool = True,
              bf16: bool = False, compiled: bool = False) -> Callable[[], None]:
    torch.manual_seed(0)
    network = convnet.build(arch, shape, 10)
    if not byte_dropout:  # torch's own dropout in place of convnet's
        for index, module in enumerate(network.body):
            if isinstance(module, nn.Dropout):
                network.body[index] = nn.Dropout(module.p)
    model: nn.Module = network if reorder else _Literal(network)
    height, width, channels = network.input_shape
    x = torch.randn(batch, channels, height, width)
    y = torch.randint(0, 10, (batch,))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    forward = torch.compile(model) if compiled else model
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3,
                                 **({"fused": True} if fused else {"foreach": False}))

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = forward(x)
        loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(5):  # warm-up (and compilation)
        step()
    return step


def dropout_alone(rounds: int) -> None:
    """ByteDropout against nn.Dropout on the Keras net's dropout input, forward + backward."""
    from convnet.network.modules import ByteDropout

    x = torch.randn(128, 64, 5, 5).contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    layers = {"convnet ByteDropout": ByteDropout(0.5), "torch nn.Dropout": nn.Dropout(0.5)}
    times: dict[str, list[float]] = {name: [] for name in layers}
    for _ in range(rounds):
        for name, layer in layers.items():
            started = time.perf_counter()
            for _ in range(100):
                layer(x).sum().backward()
            times[name].append((time.perf_counter() - started) * 10)  # ms per call
    for name, values in times.items():
        print(f"dropout alone, {name:<22}{statistics.median(values):>6.2f} ms per call")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", default="keras", choices=list(NETS))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20, help="steps per round")
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    arch, shape = NETS[args.net]
    variants = {
        "convnet default step": {},
        "NCHW instead of channels-last": {"channels_last": False},
        "activation before pooling": {"reorder": False},
        "torch dropout": {"byte_dropout": False},
        "unfused Adam (for-loop)": {"fused": False},
        "bf16 autocast": {"bf16": True},
        "tutorial step (all four above)": {"channels_last": False, "reorder": False,
                                           "byte_dropout": False, "fused": False},
    }
    if args.compile:
        variants["torch.compile"] = {"compiled": True}
    steps = {name: make_step(arch, shape, args.batch, **options)
             for name, options in variants.items()}
    rates: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            started = time.perf_counter()
            for _ in range(args.steps):
                step()
            rates[name].append(args.batch * args.steps / (time.perf_counter() - started))
    print(f"machine: {machine()}")
    print(f"{args.net}: {spec_for(arch)} on {shape}, batch {args.batch}, "
          f"{args.rounds} rounds of {args.steps} steps")
    base = statistics.median(rates["convnet default step"])
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"{name:<32}{median:>9,.0f} img/s  ({min(values):,.0f}–{max(values):,.0f})  "
              f"{median / base:>5.2f}x")
    dropout_alone(args.rounds)


if __name__ == "__main__":
    main()
