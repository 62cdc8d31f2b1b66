"""Train images/s of one network three ways, in one run: convnet, a plain PyTorch loop, Keras 3.

    python bench/throughput.py                      # both networks, all three trainers
    python bench/throughput.py --nets keras --seeds 5
    python bench/throughput.py --no-keras           # without Keras/JAX installed

Networks:
  keras   the Keras "simple MNIST convnet" (conv32k3-relu-maxpool2-conv64k3-relu-maxpool2-
          dropout0.5-fc10) on the built-in digits (8,000 training images, 28×28×1);
  cifar3  the TensorFlow tutorial's 3-conv-layer CIFAR CNN (conv32k3-relu-maxpool2-conv64k3-
          relu-maxpool2-conv64k3-relu-fc64-relu-fc10) on a 10,000-image subset of the
          shared CIFAR-10 JPEGs (32×32×3), tested on 2,000 test images.

Every trainer uses the same recipe: batch 128, Adam at 1e-3, plain cross-entropy, no
augmentation, the same per-channel normalisation, the same number of epochs (convnet's
weight averaging is off: the others have none). Each seed runs the trainers in turn, so a
slow spell of a shared machine hits all of them; the table gives the median images/s and
the mean test accuracy over the seeds. The plain loop
is what a tutorial reader writes: a shuffled `DataLoader` over a `TensorDataset`, fp32,
NCHW. Keras runs on its JAX backend in a child process (its backend is chosen at import).
Images/s count training steps only and skip the first epoch, which pays one-off warm-up
(and JAX's compilation). GFLOP/s = images/s × 3 × 2 × forward multiply-adds per image (the
backward pass costs about twice the forward), against a measured fp32 matmul.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import convnet
from benchdata import SHARED_CIFAR, load_cifar, machine, matmul_ceiling, subset
from convnet.data import Dataset, Split
from convnet.data.pixels import Normalization
from convnet.make import fit
from convnet.training.config import TrainConfig

NETS = {
    "keras": "conv32k3-relu-maxpool2-conv64k3-relu-maxpool2-dropout0.5-fc10",
    "cifar3": "conv32k3-relu-maxpool2-conv64k3-relu-maxpool2-conv64k3-relu-fc64-relu-fc10",
}


@dataclass
class Outcome:
    images_per_s: float
    accuracy: float


def _rate(epoch_seconds: list[float], images: int) -> float:
    timed = epoch_seconds[1:]  # the first epoch is warm-up
    return images * len(timed) / sum(timed)


def _normalized(split: Split, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    x = split.images.float() / 255  # (N, C, H, W)
    return (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


def plain_torch(spec: str, data: Dataset, epochs: int, seed: int) -> Outcome:
    """The tutorial loop; the network is convnet's module list run in order, in fp32 NCHW."""
    torch.manual_seed(seed)
    layers = convnet.build(spec, data.input_shape, len(data.classes)).body
    # nn.Dropout, not convnet's faster one: this is the code a reader writes
    model = nn.Sequential(*(nn.Dropout(m.p) if isinstance(m, nn.Dropout) else m for m in layers))
    norm = Normalization.of(data.train.images)
    mean, std = norm.mean, norm.std
    loader = DataLoader(TensorDataset(_normalized(data.train, mean, std), data.train.labels),
                        batch_size=128, shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    seconds = []
    for _ in range(epochs):
        model.train()
        started = time.perf_counter()
        for images, labels in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
        seconds.append(time.perf_counter() - started)
    model.eval()
    with torch.no_grad():
        predictions = model(_normalized(data.test, mean, std)).argmax(1)
    accuracy = (predictions == data.test.labels).float().mean().item()
    return Outcome(_rate(seconds, len(data.train)), accuracy)


def with_convnet(spec: str, data: Dataset, epochs: int, seed: int, out: Path) -> Outcome:
    config = TrainConfig(arch=spec, epochs=epochs, batch_size=128, optimizer="adam", lr=1e-3,
                         weight_decay=0.0, schedule="constant", label_smoothing=0.0,
                         augment="none", val_split=0.0, ema=0.0, seed=seed, device="cpu")
    result = fit(data, config, out=out)
    # every epoch trains the same images, so the overall rate is the harmonic mean
    timed = result.history[1:]
    rate = len(timed) / sum(1 / stats.images_per_s for stats in timed)
    return Outcome(rate, result.test.accuracy)


def _keras_layers(spec: str, keras):
    layers = []
    for token in spec.split("-"):
        if token.startswith("conv"):
            filters, kernel = token[4:].split("k")
            layers.append(keras.layers.Conv2D(int(filters), int(kernel)))
        elif token == "relu":
            layers.append(keras.layers.ReLU())
        elif token.startswith("maxpool"):
            layers.append(keras.layers.MaxPooling2D(int(token[7:])))
        elif token.startswith("dropout"):
            layers.append(keras.layers.Dropout(float(token[7:])))
        elif token.startswith("fc"):
            if not any(isinstance(layer, keras.layers.Flatten) for layer in layers):
                layers.append(keras.layers.Flatten())
            layers.append(keras.layers.Dense(int(token[2:])))
    return layers


def keras_worker(arrays: Path, spec: str, epochs: int, seed: int) -> None:
    """Runs in the child process: train with Keras 3 on JAX, print one JSON line."""
    os.environ["KERAS_BACKEND"] = "jax"
    import keras

    keras.utils.set_random_seed(seed)
    data = np.load(arrays)
    model = keras.Sequential([keras.Input(data["x_train"].shape[1:]),
                              *_keras_layers(spec, keras)])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    seconds: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.started)

    model.fit(data["x_train"], data["y_train"], batch_size=128, epochs=epochs, verbose=0,
              callbacks=[Timer()])
    _, accuracy = model.evaluate(data["x_test"], data["y_test"], batch_size=1024, verbose=0)
    print(json.dumps({"images_per_s": _rate(seconds, len(data["y_train"])),
                      "accuracy": float(accuracy), "keras": keras.__version__}))


def with_keras(spec: str, data: Dataset, epochs: int, seed: int) -> Outcome | str:
    """Keras in a child process, on the same normalised arrays (NHWC, Keras's layout)."""
    norm = Normalization.of(data.train.images)
    mean, std = norm.mean, norm.std
    with tempfile.TemporaryDirectory() as folder:
        arrays = Path(folder) / "data.npz"
        np.savez(arrays,
                 x_train=_normalized(data.train, mean, std).permute(0, 2, 3, 1).numpy(),
                 y_train=data.train.labels.numpy(),
                 x_test=_normalized(data.test, mean, std).permute(0, 2, 3, 1).numpy(),
                 y_test=data.test.labels.numpy())
        child = subprocess.run(
            [sys.executable, __file__, "--keras-worker", str(arrays), "--spec", spec,
             "--epochs", str(epochs), "--seed", str(seed)],
            capture_output=True, text=True, env={**os.environ, "KERAS_BACKEND": "jax"})
    if child.returncode != 0:
        return child.stderr.strip().splitlines()[-1] if child.stderr.strip() else "failed"
    result = json.loads(child.stdout.strip().splitlines()[-1])
    return Outcome(result["images_per_s"], result["accuracy"])


def _combine(runs: list[Outcome | str]) -> Outcome | str:
    """Median images/s and mean accuracy over seeds; the first failure if any failed."""
    failed = [run for run in runs if isinstance(run, str)]
    if failed:
        return failed[0]
    return Outcome(statistics.median(run.images_per_s for run in runs),
                   statistics.mean(run.accuracy for run in runs))


def dataset_for(net: str, cifar: Path, train_size: int) -> Dataset:
    if net == "keras":
        return convnet.datasets.load("digits")
    full = load_cifar(cifar)
    return Dataset("cifar10-subset", full.classes, subset(full.train, train_size),
                   subset(full.test, 2000), full.source, flip_ok=True)


def report(net: str, data: Dataset, outcomes: dict[str, Outcome | str], ceiling: float) -> None:
    spec = NETS[net]
    macs = sum(info.macs for info in convnet.build(spec, data.input_shape, 10).infos)
    print(f"\n{net}: {spec} on {len(data.train):,} images "
          f"{'×'.join(map(str, data.input_shape))}, {macs / 1e6:.2f} M multiply-adds/image")
    print(f"{'trainer':<14}{'train img/s':>13}{'GFLOP/s':>10}{'of ceiling':>12}{'test acc':>10}")
    base = outcomes["convnet"]
    for name, outcome in outcomes.items():
        if isinstance(outcome, str):
            print(f"{name:<14}  not run: {outcome}")
            continue
        gflops = outcome.images_per_s * 6 * macs / 1e9
        print(f"{name:<14}{outcome.images_per_s:>13,.0f}{gflops:>10.1f}{gflops / ceiling:>12.1%}"
              f"{outcome.accuracy:>10.2%}")
    for name, outcome in outcomes.items():
        if name != "convnet" and not isinstance(outcome, str):
            print(f"convnet / {name}: {base.images_per_s / outcome.images_per_s:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", default="keras,cifar3", help="comma-separated: keras,cifar3")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--cifar", type=Path, default=SHARED_CIFAR,
                        help="CIFAR-10 JPEG folder or .tar.gz")
    parser.add_argument("--cifar-train", type=int, default=10_000)
    parser.add_argument("--no-keras", action="store_true")
    parser.add_argument("--keras-worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.keras_worker:
        keras_worker(args.keras_worker, args.spec, args.epochs, args.seed)
        return
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch is not timed)")
    ceiling = matmul_ceiling()
    print(f"machine: {machine()}\nfp32 matmul ceiling (2048², measured): {ceiling:.1f} GFLOP/s")
    out = Path(tempfile.mkdtemp(prefix="convnet-throughput-"))
    for net in args.nets.split(","):
        data = dataset_for(net, args.cifar, args.cifar_train)
        spec = NETS[net]
        runs: dict[str, list[Outcome | str]] = {"convnet": [], "plain torch": [],
                                                "keras 3 (jax)": []}
        for seed in range(args.seeds):
            runs["convnet"].append(with_convnet(spec, data, args.epochs, seed,
                                                out / f"{net}-{seed}"))
            runs["plain torch"].append(plain_torch(spec, data, args.epochs, seed))
            runs["keras 3 (jax)"].append("--no-keras" if args.no_keras else
                                         with_keras(spec, data, args.epochs, seed))
            print(f"{net} seed {seed}: " + ", ".join(
                f"{name} {run.images_per_s:,.0f} img/s {run.accuracy:.2%}"
                for name, seeds in runs.items() if isinstance(run := seeds[-1], Outcome)),
                flush=True)
        report(net, data, {name: _combine(seeds) for name, seeds in runs.items()}, ceiling)
    print(f"\n{args.epochs} epochs, batch 128, Adam 1e-3, first epoch untimed; "
          f"median img/s and mean accuracy over {args.seeds} seed(s).")


if __name__ == "__main__":
    main()
