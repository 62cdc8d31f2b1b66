"""Class imbalance: weight the loss, or sample classes evenly, or leave the data as it is."""

from __future__ import annotations

import torch

AUTO_THRESHOLD = 1.5  # largest/smallest class count above which `auto` weights the loss


def class_counts(labels: torch.Tensor, k: int) -> torch.Tensor:
    return torch.bincount(labels.cpu(), minlength=k)  # (K,)


def choose(mode: str, counts: torch.Tensor) -> str:
    """``auto`` -> ``weights`` when the largest class outnumbers the smallest by more than
    AUTO_THRESHOLD, else ``none``; other modes are returned as they are."""
    if mode != "auto":
        return mode
    present = counts[counts > 0].double()
    ratio = float(present.max() / present.min()) if len(present) else 1.0
    return "weights" if ratio > AUTO_THRESHOLD else "none"


def loss_weights(counts: torch.Tensor) -> torch.Tensor:
    """N / (K * n_c) per class: every class contributes the same total to the loss."""
    present = counts.clamp(min=1).double()
    return (counts.sum() / (len(counts) * present)).float()  # (K,)


def balanced_order(labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """An epoch's worth of indices drawn with replacement, each class equally likely."""
    counts = torch.bincount(labels)  # (K,)
    per_sample = (1.0 / counts.double())[labels]  # (N,) each class sums to 1
    return torch.multinomial(per_sample, len(labels), replacement=True, generator=generator)
