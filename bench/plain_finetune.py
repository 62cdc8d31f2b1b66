"""The plain PyTorch fine-tune a tutorial reader writes, as one script: the baseline of
`bench/time_to_accuracy.py`.

    python bench/plain_finetune.py FOLDER [--side 224] [--head-epochs 2] [--epochs 3]

FOLDER holds train/<class>/ and test/<class>/. Every image is decoded with Pillow,
squashed to side × side and kept in memory; EfficientNet-Lite0 starts from its ImageNet
weights (the same network and weights convnet uses; torchvision cannot load here) with a
new head; the head trains alone for --head-epochs (the body frozen, as the tutorials do:
``requires_grad = False``, the body still run every step), then every layer for --epochs at
a tenth of the learning rate. Adam, batch 32, random horizontal flips, ImageNet mean and
std. Prints one JSON line: test accuracy, seconds (this script's own, from its first line:
imports, decoding and training included) and the phases' seconds.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

import convnet  # noqa: E402
from convnet.training.finetune import Start, load_into  # noqa: E402
from convnet.training.pretrained import imagenet_weights  # noqa: E402

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def read(folder: Path, side: int, classes: list[str] | None = None
         ) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(images (N, 3, side, side) float in 0..1, labels (N,), classes) of one split."""
    classes = classes or sorted(p.name for p in folder.iterdir() if p.is_dir())
    images, labels = [], []
    for label, name in enumerate(classes):
        for path in sorted((folder / name).iterdir()):
            with Image.open(path) as image:
                image = ImageOps.exif_transpose(image).convert("RGB").resize((side, side))
                images.append(np.asarray(image))
                labels.append(label)
    pixels = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
    return pixels, torch.tensor(labels), classes


def epoch(network, images, labels, optimizer, batch: int) -> None:
    network.train()
    order = torch.randperm(len(labels))
    for index in order.split(batch):
        x, y = images[index], labels[index]
        flip = torch.rand(len(y)) < 0.5
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
        loss = F.cross_entropy(network((x - MEAN) / STD), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def accuracy(network, images, labels) -> float:
    network.eval()
    right = 0
    with torch.no_grad():
        for index in torch.arange(len(labels)).split(64):
            right += int((network((images[index] - MEAN) / STD).argmax(1)
                          == labels[index]).sum())
    return right / len(labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--side", type=int, default=224)
    parser.add_argument("--head-epochs", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    began = time.perf_counter()
    train_x, train_y, classes = read(args.folder / "train", args.side)
    test_x, test_y, _ = read(args.folder / "test", args.side, classes)
    decoded = time.perf_counter()
    network = convnet.build("efficientnet-lite0", (args.side, args.side, 3), len(classes))
    load_into(network, Start("imagenet", "efficientnet-lite0",
                             imagenet_weights("efficientnet-lite0"), None, ""))
    head = set(map(id, network.head_parameters))
    for parameter in network.parameters():
        parameter.requires_grad = id(parameter) in head
    optimizer = torch.optim.Adam(network.head_parameters, lr=args.lr)
    for _ in range(args.head_epochs):
        epoch(network, train_x, train_y, optimizer, 32)
    headed = time.perf_counter()
    for parameter in network.parameters():
        parameter.requires_grad = True
    optimizer = torch.optim.Adam(network.parameters(), lr=args.lr / 10)
    for _ in range(args.epochs):
        epoch(network, train_x, train_y, optimizer, 32)
    trained = time.perf_counter()
    score = accuracy(network, test_x, test_y)
    print(json.dumps({"accuracy": score, "seconds": time.perf_counter() - STARTED,
                      "decode_s": decoded - began, "head_s": headed - decoded,
                      "all_layers_s": trained - headed, "train_images": len(train_y),
                      "test_images": len(test_y), "side": args.side,
                      "head_epochs": args.head_epochs, "epochs": args.epochs}))


if __name__ == "__main__":
    main()
