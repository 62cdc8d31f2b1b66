"""ONNX parity for every preset on real images: each preset built with its first layers
fitted to real data (whitening from the images), exported through `convnet export`'s graph,
and run by onnxruntime next to PyTorch on 256 test images, a batch of one and a batch of 7.

    python bench/export_parity.py

Grayscale presets see digits test images; colour presets see CIFAR-10 test images from
../shared/data (extracted once). The weights are the random initial ones: parity is about
the graph, and a trained run's own check is what `convnet export` prints.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnxruntime
import torch

import convnet
from benchdata import cpu_flags, load_cifar, machine, subset
from convnet.data.pixels import Normalization
from convnet.export.graph import PixelModel
from convnet.export.onnx_model import TOLERANCE, write_graph
from convnet.network import PRESETS


def parity(name: str, images: torch.Tensor, classes: int, work: Path) -> tuple[float, int, int]:
    torch.manual_seed(0)
    channels, height, width = images.shape[1:]
    network = convnet.build(name, (height, width, channels), classes)
    normalization = Normalization.of(images)
    if network.has_whitening:
        network.fit_whitening(normalization(images))
    model = PixelModel(network.eval(), normalization, name.startswith("cifar")).eval()
    path = work / f"{name}.onnx"
    write_graph(model, (height, width, channels), path, 18, None)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst, agree, count = 0.0, 0, 0
    for batch in (images, images[:1], images[:7]):
        pixels = batch.permute(0, 2, 3, 1).contiguous()  # (N, H, W, C)
        with torch.inference_mode():
            expected = model(pixels)[0].numpy()
        found = session.run(["probabilities"], {"pixels": pixels.numpy()})[0]
        worst = max(worst, float(np.abs(found - expected).max()))
        agree += int((found.argmax(1) == expected.argmax(1)).sum())
        count += len(batch)
    return worst, agree, count


def main() -> None:
    print(f"machine: {machine()}\ncpu flags: {cpu_flags()}")
    digits = subset(convnet.datasets.load("digits").test, 256).images
    cifar = subset(load_cifar().test, 256).images
    work = Path(tempfile.mkdtemp(prefix="convnet-parity-"))
    print(f"\n| preset | input | max abs diff of probabilities | top-1 agreement |"
          f" within {TOLERANCE:.0e} |\n|---|---|---|---|---|")
    for name in PRESETS:
        images = digits if name in ("default", "lenet", "keras-mnist") else cifar
        worst, agree, count = parity(name, images, 10, work)
        shape = "×".join(map(str, (*images.shape[2:], images.shape[1])))
        print(f"| {name} | {shape} | {worst:.1e} | {agree}/{count} | "
              f"{'yes' if worst <= TOLERANCE and agree == count else 'NO'} |", flush=True)


if __name__ == "__main__":
    main()
