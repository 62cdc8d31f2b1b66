"""Metrics against a brute-force reference."""

from __future__ import annotations

import numpy as np
import torch

from convnet.runs.evaluate import Evaluation, confusion_matrix


def test_confusion_and_scores_match_a_reference_loop():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, 500)
    predictions = np.where(rng.random(500) < 0.7, labels, rng.integers(0, 4, 500))
    predictions[predictions == 3] = 2  # class 3 is never predicted: precision 0 by convention
    matrix = confusion_matrix(torch.tensor(labels), torch.tensor(predictions), 4)
    reference = np.zeros((4, 4), dtype=np.int64)
    for t, p in zip(labels, predictions):
        reference[t, p] += 1
    assert matrix.numpy().tolist() == reference.tolist()

    result = Evaluation(["a", "b", "c", "d"], 0.0, matrix)
    assert result.accuracy == (labels == predictions).mean()
    for k in range(4):
        tp = ((predictions == k) & (labels == k)).sum()
        predicted, actual = (predictions == k).sum(), (labels == k).sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        assert np.isclose(result.precision[k], precision)
        assert np.isclose(result.recall[k], recall)
        assert np.isclose(result.f1[k], f1)
    assert np.isclose(result.macro["f1"], float(result.f1.mean()))
    assert result.to_dict()["per_class"]["d"]["precision"] == 0.0


def test_balanced_accuracy_is_the_mean_recall_over_present_classes():
    labels = np.array([0] * 90 + [1] * 10)
    predictions = np.zeros(100, dtype=np.int64)  # always class 0: 90% accurate, useless
    result = Evaluation(["a", "b", "c"], 0.0,
                        confusion_matrix(torch.tensor(labels), torch.tensor(predictions), 3))
    assert result.accuracy == 0.9
    assert result.balanced_accuracy == 0.5  # (1.0 + 0.0) / 2; class c is absent
    assert result.to_dict()["balanced_accuracy"] == 0.5
