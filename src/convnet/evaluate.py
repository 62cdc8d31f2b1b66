"""Scoring a classifier: accuracy, per-class precision/recall/F1, the confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from convnet.datasets import Split


def is_nhwc(images: torch.Tensor) -> bool:
    """Multi-channel images laid out channels-last in memory."""
    return images.shape[1] > 1 and images.is_contiguous(memory_format=torch.channels_last)


def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float32 with zero mean and unit std per channel, same layout.

    Channels-last input is worked on as (B, H, W, C) so the per-channel constants broadcast
    along the contiguous last axis, which is several times faster than across strides.
    """
    if is_nhwc(images):
        x = images.permute(0, 2, 3, 1).to(torch.float32, copy=True)  # (B, H, W, C), ours
        x = x.div_(255).sub_(mean).div_(std)
        return x.permute(0, 3, 1, 2)
    x = images.to(torch.float32, copy=True)  # a fresh tensor, so the in-place ops are safe
    return x.div_(255).sub_(mean[:, None, None]).div_(std[:, None, None])


@torch.inference_mode()
def predict_logits(network: nn.Module, images: torch.Tensor, mean: torch.Tensor,
                   std: torch.Tensor, batch_size: int = 1024,
                   memory_format: torch.memory_format = torch.contiguous_format,
                   flip_tta: bool = False) -> torch.Tensor:
    """Logits (N, classes) for uint8 images (N, C, H, W), in large batches, on the
    network's device; the result is on that device too.

    With ``flip_tta`` each image's logits are the mean of its own and its mirror image's
    (test-time augmentation, for networks trained with flips).
    """
    was_training = network.training
    network.eval()
    device = next(network.parameters()).device
    mean, std = mean.to(device), std.to(device)
    outputs = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].to(device, non_blocking=True)
        batch = normalize(batch, mean, std).contiguous(memory_format=memory_format)
        logits = network(batch).float()  # (b, classes)
        if flip_tta:
            logits = (logits + network(batch.flip(3)).float()) / 2
        outputs.append(logits)
    network.train(was_training)
    return torch.cat(outputs)


@dataclass(frozen=True)
class Evaluation:
    """Scores on one split. ``confusion[i, j]`` counts images of class i predicted as j."""

    classes: list[str]
    loss: float  # mean cross-entropy (log loss), no label smoothing
    confusion: torch.Tensor  # (K, K) int64

    @property
    def count(self) -> int:
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        return float(self.confusion.diag().sum()) / max(self.count, 1)

    @property
    def support(self) -> torch.Tensor:
        return self.confusion.sum(1)  # (K,) true images per class

    @property
    def precision(self) -> torch.Tensor:
        predicted = self.confusion.sum(0).double()
        return torch.where(predicted > 0, self.confusion.diag() / predicted.clamp(min=1), 0.0)

    @property
    def recall(self) -> torch.Tensor:
        actual = self.support.double()
        return torch.where(actual > 0, self.confusion.diag() / actual.clamp(min=1), 0.0)

    @property
    def f1(self) -> torch.Tensor:
        p, r = self.precision, self.recall
        return torch.where(p + r > 0, 2 * p * r / (p + r).clamp(min=1e-12), 0.0)

    @property
    def macro(self) -> dict[str, float]:
        """Unweighted means over the classes present in the split."""
        present = self.support > 0
        return {name: float(values[present].mean()) for name, values in
                (("precision", self.precision), ("recall", self.recall), ("f1", self.f1))}

    @property
    def balanced_accuracy(self) -> float:
        """Mean recall over the classes present: accuracy as if every class were equal."""
        return self.macro["recall"]

    def to_dict(self) -> dict:
        return {
            "accuracy": self.accuracy, "loss": self.loss, "count": self.count,
            "balanced_accuracy": self.balanced_accuracy, "macro": self.macro,
            "per_class": {
                name: {"precision": float(p), "recall": float(r), "f1": float(f),
                       "support": int(s)}
                for name, p, r, f, s in zip(self.classes, self.precision, self.recall,
                                            self.f1, self.support)
            },
            "confusion": self.confusion.tolist(),
        }


def confusion_matrix(labels: torch.Tensor, predictions: torch.Tensor, k: int) -> torch.Tensor:
    """(K, K) counts: row = true class, column = predicted class."""
    flat = labels.long() * k + predictions.long()  # (N,) one cell index per image
    return torch.bincount(flat, minlength=k * k).reshape(k, k)


def evaluate_split(network: nn.Module, split: Split, mean: torch.Tensor, std: torch.Tensor,
                   classes: list[str], batch_size: int = 1024,
                   memory_format: torch.memory_format = torch.contiguous_format,
                   flip_tta: bool = False) -> Evaluation:
    """Score a network on a split of uint8 images."""
    logits = predict_logits(network, split.images, mean, std, batch_size, memory_format,
                            flip_tta)
    labels = split.labels.to(logits.device)
    loss = float(F.cross_entropy(logits, labels)) if len(labels) else float("nan")
    confusion = confusion_matrix(labels, logits.argmax(1), len(classes)).cpu()
    return Evaluation(list(classes), loss, confusion)
