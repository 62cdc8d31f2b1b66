"""convnet against a plain PyTorch loop on the Keras example network, in one run.

Both train conv32k3-relu-maxpool2-conv64k3-relu-maxpool2-dropout0.5-fc10 on the built-in
`digits` (8,000 training images here: no validation split) with batch 128 and Adam at 1e-3,
fp32, no augmentation, no label smoothing, for the same number of epochs. The plain loop is
what a tutorial reader writes: a `DataLoader` over a `TensorDataset`, shuffled.

Train images/s count the training steps only (evaluation excluded) and skip the first epoch,
which pays one-off warm-up costs in both.

    python bench/keras_net_vs_torch.py --epochs 4
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import convnet
from convnet.config import TrainConfig
from convnet.train import fit

SPEC = "conv32k3-relu-maxpool2-conv64k3-relu-maxpool2-dropout0.5-fc10"


def plain_torch(data: convnet.datasets.Dataset, epochs: int, seed: int) -> tuple[float, float]:
    """(train images/s after the first epoch, test accuracy) of a tutorial-style loop."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Dropout(0.5), nn.Flatten(), nn.Linear(64 * 5 * 5, 10),
    )
    x = (data.train.images.float() / 255 - 0.1307) / 0.3081  # (N, 1, 28, 28)
    loader = DataLoader(TensorDataset(x, data.train.labels), batch_size=128, shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    timed_images, timed_seconds = 0, 0.0
    for epoch in range(epochs):
        model.train()
        start, seen = time.perf_counter(), 0
        for images, labels in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
            seen += len(labels)
        if epoch > 0:
            timed_images += seen
            timed_seconds += time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        test_x = (data.test.images.float() / 255 - 0.1307) / 0.3081
        accuracy = (model(test_x).argmax(1) == data.test.labels).float().mean().item()
    return timed_images / timed_seconds, accuracy


def with_convnet(data: convnet.datasets.Dataset, epochs: int, seed: int,
                 out: str) -> tuple[float, float]:
    config = TrainConfig(arch=SPEC, epochs=epochs, batch_size=128, optimizer="adam", lr=1e-3,
                         weight_decay=0.0, schedule="constant", label_smoothing=0.0,
                         augment="none", val_split=0.0, seed=seed, device="cpu")
    result = fit(data, config, out=out)
    timed = result.history[1:]
    # Every epoch trains the same number of images, so the overall rate is the harmonic mean.
    rate = len(timed) / sum(1 / s.images_per_s for s in timed)
    return rate, result.test.accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="run folder for convnet's run")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch is not timed)")
    data = convnet.datasets.load("digits")
    out = args.out or f"runs/bench-keras-net-{int(time.time())}"
    print(f"machine: {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} torch threads, torch {torch.__version__}")
    torch_rate, torch_acc = plain_torch(data, args.epochs, args.seed)
    convnet_rate, convnet_acc = with_convnet(data, args.epochs, args.seed, out)
    print(f"{'':12}{'train img/s':>14}{'test acc':>10}")
    print(f"{'plain torch':12}{torch_rate:>14,.0f}{torch_acc:>10.2%}")
    print(f"{'convnet':12}{convnet_rate:>14,.0f}{convnet_acc:>10.2%}")
    print(f"ratio convnet / plain torch: {convnet_rate / torch_rate:.2f}x "
          f"({args.epochs} epochs, first epoch untimed)")


if __name__ == "__main__":
    main()
