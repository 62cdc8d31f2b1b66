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

    Inside, with the values `convnet.runs.Predictor` gives: with flip TTA, the mirror
    image joins the batch; scale to 0..1, subtract the run's mean and divide by its std
    per channel, channels first, the network (one pass for both views), the mean of each
    image's two views' logits, the run's calibration (the logits divided by its
    temperature), softmax. The logits given out are the calibrated ones, so that their
    softmax is the probabilities. The unknown score is the detector's distance of the
    classifier's input without its last activation (averaged over the views), scaled to
    unit length, to the nearest class mean (through the precision's factor, as
    `convnet.runs.unknown.Gaussians.distance`); ``unknown`` is that score above the
    threshold that keeps `convnet.runs.unknown.KEPT` of the validation images known.
    """

    def __init__(self, network: nn.Module, normalization: Normalization, flip_tta: bool,
                 temperature: float = 1.0, detector: Detector | None = None):
        super().__init__()
        self.network, self.flip_tta, self.temperature = network, flip_tta, float(temperature)
        # per channel, repeated along a row of pixels (1, 1, W * C) and applied to rows
        # (N, H, W * C) before the channels go first: onnxruntime broadcasts a span of the
        # last axis at a time, so on channels last (a span of C values) the normalization
        # cost as much as a convolution in the int8 graph, and 30× more with one channel
        # (bench/HISTORY.md, "int8: where the time went")
        width = network.input_shape[1]
        self.register_buffer("mean", normalization.mean.repeat(width).reshape(1, 1, -1))
        self.register_buffer("std", normalization.std.repeat(width).reshape(1, 1, -1))
        # the columns right to left: a gather, where onnxruntime's flip (a slice with a
        # negative step) copies a value at a time, 1.3× slower
        self.register_buffer("mirror", torch.arange(width - 1, -1, -1))
        self.detects = detector is not None
        if self.detects:
            gaussians = detector.gaussians
            self.register_buffer("factor", gaussians.factor.clone())  # (D, D)
            self.register_buffer("class_means", gaussians.factored_means.clone())  # (K, D)
            self.cut = detector.cut(KEPT)

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        count = pixels.shape[0]
        if self.flip_tta:  # both views in one batch: one pass of the network, the
            # mirror taken on the uint8 pixels, a quarter of the bytes of the float image
            pixels = torch.cat([pixels, pixels.index_select(2, self.mirror)])  # (2N, H, W, C)
        n, height, width, channels = pixels.shape
        rows = pixels.reshape(n, height, width * channels).to(torch.float32)
        x = (rows / 255 - self.mean) / self.std  # the Predictor's operations, in its order
        x = x.reshape(n, height, width, channels).permute(0, 3, 1, 2)  # (n, C, H, W)
        if not self.detects:
            logits = self._calibrated(self._mean(self.network(x), count))  # (N, classes)
            return logits.softmax(1), logits
        features, raw = self.network.forward_embeddings(x)  # (n, D) each
        logits = self._calibrated(self._mean(self.network.classifier(features), count))
        embedding = self._mean(raw, count)  # without the last activation
        embedding = embedding / embedding.norm(dim=1, keepdim=True).clamp_min(1e-12)
        gaps = (embedding @ self.factor)[:, None, :] - self.class_means[None]  # (N, K, D)
        squared = (gaps * gaps).sum(2)  # (N, K)
        score = squared.min(1).values  # (N,)
        return logits.softmax(1), logits, score, score > self.cut

    def _mean(self, values: torch.Tensor, count: int) -> torch.Tensor:
        """(2N or N, ...) -> (N, ...): the mean over each image's views."""
        return (values[:count] + values[count:]) / 2 if self.flip_tta else values

    def _calibrated(self, logits: torch.Tensor) -> torch.Tensor:
        return logits / self.temperature if self.temperature != 1.0 else logits
