"""Every preset and every layer kind exports to ONNX and gives PyTorch's probabilities, for
grayscale and RGB, odd input sizes, a batch of one and an odd batch; `onnx.checker` passes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import convnet
from convnet.data.pixels import Normalization
from convnet.export.graph import PixelModel
from convnet.export.onnx_model import TOLERANCE, write_graph
from convnet.network import PRESETS

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")

# the larger EfficientNet-Lites add no layer kind to Lite0's
CASES = [(name, "28x28x1" if name in ("default", "lenet", "keras-mnist") else "32x32x3")
         for name in PRESETS if name not in ("efficientnet-lite1", "efficientnet-lite2")] + [
    ("whiten2-conv6k3p1-bn-gelu-maxpool2-conv8k3s2psame-tanh-avgpool2-fc12-sigmoid-"
     "dropout0.5-fc", "37x23x3"),
    ("conv4k3p1-bn-relu-gap-fc", "5x5x1"),
    ("conv8k3s2ptfnb-bn-relu6-dwconvk3s2ptfnb-bn-relu6-conv12k1nb-conv6k3g3-"
     "dwconvk5psamem2-gap-fc", "37x23x3"),
    ("conv5k5s2p2-relu-maxpool3s2-dropout0.3-flatten-fc7-relu-fc", "37x23x3"),
]


def _model(spec: str, shape: str, flip: bool) -> tuple[PixelModel, tuple[int, int, int]]:
    torch.manual_seed(0)
    network = convnet.build(spec, shape, 5)
    hwc = network.input_shape
    if network.has_whitening:
        network.fit_whitening(torch.randn(64, hwc[2], hwc[0], hwc[1]))
    for module in network.modules():  # batch norm as after training, not the identity
        if isinstance(module, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    channels = hwc[2]
    normalization = Normalization(torch.linspace(0.2, 0.6, channels),
                                  torch.linspace(0.2, 0.4, channels))
    return PixelModel(network.eval(), normalization, flip).eval(), hwc


@pytest.mark.parametrize("spec, shape", CASES, ids=[f"{s[:30]}@{h}" for s, h in CASES])
def test_exported_graph_gives_pytorchs_probabilities(spec, shape, tmp_path):
    flip = spec == "cifar-fast"  # one case with flip TTA inside the graph
    model, (height, width, channels) = _model(spec, shape, flip)
    path = tmp_path / "model.onnx"
    write_graph(model, (height, width, channels), path, 18, None)
    onnx.checker.check_model(onnx.load(str(path)))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(1)
    for batch in (1, 7):
        pixels = torch.randint(0, 256, (batch, height, width, channels), dtype=torch.uint8,
                               generator=generator)
        with torch.inference_mode():
            expected, logits = model(pixels)
        found, found_logits = session.run(["probabilities", "logits"],
                                          {"pixels": pixels.numpy()})
        assert np.abs(found - expected.numpy()).max() <= TOLERANCE
        assert (found.argmax(1) == expected.numpy().argmax(1)).all()
        assert np.allclose(found_logits, logits.numpy(), atol=1e-4)
