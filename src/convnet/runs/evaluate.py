"""Scoring a classifier: accuracy, per-class precision/recall/F1, the confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from convnet.data.dataset import images_digest


@dataclass(frozen=True, repr=False)
class Evaluation:
    """Scores on one split. ``confusion[i, j]`` counts images of class i predicted as j."""

    classes: list[str]
    loss: float  # mean cross-entropy (log loss) of the run's answers, no label smoothing
    confusion: torch.Tensor  # (K, K) int64
    # how honest the probabilities are (`convnet.runs.calibration.Honesty` as dicts), before
    # and after the run's calibration; None where not measured (an empty or sharded split)
    honesty: dict[str, dict[str, float]] | None = None

    def __repr__(self) -> str:
        return (f"Evaluation({self.count:,} images, {len(self.classes)} classes: accuracy "
                f"{self.accuracy:.4f}, log loss {self.loss:.4f})")

    def _repr_html_(self) -> str:
        """In a notebook: scores, how honest the probabilities are, the per-class table and
        the confusion matrix."""
        from convnet.runs.display import evaluation_html

        return evaluation_html(self)

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
            **({} if self.honesty is None else {"calibration": self.honesty}),
        }


def confusion_matrix(labels: torch.Tensor, predictions: torch.Tensor, k: int) -> torch.Tensor:
    """(K, K) counts: row = true class, column = predicted class."""
    flat = labels.long() * k + predictions.long()  # (N,) one cell index per image
    return torch.bincount(flat, minlength=k * k).reshape(k, k)


@dataclass(frozen=True)
class Scored:
    """A split's raw logits (before calibration) with a digest of the very images they are
    of: the report drawn right after training reuses the run's last pass over its splits
    instead of a second one, and only for the same images (`logits_for`)."""

    digest: str
    logits: torch.Tensor  # (N, classes)

    @classmethod
    def of(cls, images: torch.Tensor, logits: torch.Tensor) -> Scored:
        return cls(images_digest(images), logits.detach().cpu())

    def logits_for(self, images: torch.Tensor) -> torch.Tensor | None:
        """The logits, where ``images`` are the ones scored; else None (score them)."""
        return self.logits if images_digest(images) == self.digest else None

