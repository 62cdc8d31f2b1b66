"""Class imbalance: loss weights, the even sampler, the automatic choice."""

from __future__ import annotations

import numpy as np
import torch

from convnet.data import balance


def test_loss_weights_make_every_class_count_the_same():
    counts = torch.tensor([90, 9, 1])
    weights = balance.loss_weights(counts)
    expected = 100 / (3 * np.array([90, 9, 1]))  # N / (K n_c)
    assert np.allclose(weights.numpy(), expected)
    assert np.allclose((weights * counts).numpy(), 100 / 3)


def test_balanced_order_draws_classes_evenly():
    labels = torch.tensor([0] * 900 + [1] * 90 + [2] * 10)
    order = balance.balanced_order(labels, torch.Generator().manual_seed(0))
    drawn = torch.bincount(labels[order], minlength=3).double() / len(order)
    assert len(order) == len(labels)
    assert torch.allclose(drawn, torch.full((3,), 1 / 3, dtype=torch.float64), atol=0.05)


def test_auto_weights_only_past_the_threshold():
    assert balance.choose("auto", torch.tensor([100, 100, 90])) == "none"
    assert balance.choose("auto", torch.tensor([100, 10])) == "weights"
    assert balance.choose("sampler", torch.tensor([100, 100])) == "sampler"
