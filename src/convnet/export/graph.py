"""The exported graph: a run's network with everything it does to an image around it, so
that the file alone turns decoded pixels into probabilities, and, where the run has an
"unknown" detector, into its score and verdict."""

from __future__ import annotations

import torch
from torch import nn

from convnet.data.pixels import Normalization
from convnet.runs.unknown import KEPT, Detector


class PixelModel(nn.Module):
    """uint8 pixels (N, H, W, C), as an image is decoded -> (probabilities, logits), and
    with a detector also (unknown_score, unknown).

    Inside, in the order `convnet.runs.Predictor` does it: scale to 0..1, subtract the
    run's mean and divide by its std per channel, channels first, the network, the mean
    with the mirror image's logits when the run uses flip TTA, the run's calibration
    (the logits divided by its temperature), softmax. The logits given out are the
    calibrated ones, so that their softmax is the probabilities. The unknown score is the
    detector's distance of the classifier's input without its last activation (averaged
    over the flips, as the Predictor does), scaled to unit length, to the nearest class
    mean; ``unknown`` is that
    score above the threshold that keeps `convnet.runs.unknown.KEPT` of the validation
    images known.
    """

    def __init__(self, network: nn.Module, normalization: Normalization, flip_tta: bool,
                 temperature: float = 1.0, detector: Detector | None = None):
        super().__init__()
        self.network, self.flip_tta, self.temperature = network, flip_tta, float(temperature)
        self.register_buffer("mean", normalization.mean.reshape(1, -1, 1, 1).clone())
        self.register_buffer("std", normalization.std.reshape(1, -1, 1, 1).clone())
        self.detects = detector is not None
        if self.detects:
            self.register_buffer("class_means", detector.gaussians.means.clone())  # (K, D)
            self.register_buffer("precision", detector.gaussians.precision.clone())  # (D, D)
            self.cut = detector.cut(KEPT)

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = pixels.permute(0, 3, 1, 2).to(torch.float32)  # (N, H, W, C) -> (N, C, H, W)
        x = (x / 255 - self.mean) / self.std  # the same operations, in the same order
        views = [x, x.flip(3)] if self.flip_tta else [x]
        if not self.detects:
            logits = self._calibrated(sum(self.network(view) for view in views) / len(views))
            return logits.softmax(1), logits
        found = [self.network.forward_embeddings(view) for view in views]  # (N, D) pairs
        embedding = sum(raw for _, raw in found) / len(found)  # without the last activation
        logits = sum(self.network.classifier(e) for e, _ in found) / len(found)  # (N, classes)
        logits = self._calibrated(logits)
        embedding = embedding / embedding.norm(dim=1, keepdim=True).clamp_min(1e-12)
        gaps = embedding[:, None, :] - self.class_means[None]  # (N, K, D)
        squared = ((gaps @ self.precision) * gaps).sum(2)  # (N, K)
        score = squared.min(1).values  # (N,)
        return logits.softmax(1), logits, score, score > self.cut

    def _calibrated(self, logits: torch.Tensor) -> torch.Tensor:
        return logits / self.temperature if self.temperature != 1.0 else logits
