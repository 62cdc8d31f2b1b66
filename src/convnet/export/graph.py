"""The exported graph: a run's network with everything it does to an image around it, so
that the file alone turns decoded pixels into probabilities."""

from __future__ import annotations

import torch
from torch import nn

from convnet.data.pixels import Normalization


class PixelModel(nn.Module):
    """uint8 pixels (N, H, W, C), as an image is decoded -> (probabilities, logits).

    Inside, in the order `convnet.runs.Predictor` does it: scale to 0..1, subtract the
    run's mean and divide by its std per channel, channels first, the network, the mean
    with the mirror image's logits when the run uses flip TTA, the run's calibration
    (the logits divided by its temperature), softmax. The logits given out are the
    calibrated ones, so that their softmax is the probabilities.
    """

    def __init__(self, network: nn.Module, normalization: Normalization, flip_tta: bool,
                 temperature: float = 1.0):
        super().__init__()
        self.network, self.flip_tta, self.temperature = network, flip_tta, float(temperature)
        self.register_buffer("mean", normalization.mean.reshape(1, -1, 1, 1).clone())
        self.register_buffer("std", normalization.std.reshape(1, -1, 1, 1).clone())

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = pixels.permute(0, 3, 1, 2).to(torch.float32)  # (N, H, W, C) -> (N, C, H, W)
        x = (x / 255 - self.mean) / self.std  # the same operations, in the same order
        logits = self.network(x)  # (N, classes)
        if self.flip_tta:
            logits = (logits + self.network(x.flip(3))) / 2
        if self.temperature != 1.0:
            logits = logits / self.temperature
        return logits.softmax(1), logits
