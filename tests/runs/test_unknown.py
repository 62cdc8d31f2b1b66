"""The candidate "unknown" scores and how they are judged, against reference
implementations: scikit-learn's ROC area, numpy's Mahalanobis distance, and the network's
own forward pass for the classifier's input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import convnet
from convnet.runs.unknown import (
    CANDIDATES,
    Gaussians,
    auroc,
    false_positives,
    score,
    threshold,
)


def test_the_roc_area_is_scikit_learns_ties_included():
    metrics = pytest.importorskip("sklearn.metrics")
    generator = torch.Generator().manual_seed(0)
    known = torch.randint(0, 20, (300,), generator=generator).float()  # many ties
    unknown = torch.randint(5, 30, (200,), generator=generator).float()
    truth = np.r_[np.zeros(300), np.ones(200)]
    expected = metrics.roc_auc_score(truth, np.r_[known.numpy(), unknown.numpy()])
    assert auroc(known, unknown) == pytest.approx(expected, abs=1e-9)
    assert auroc(torch.zeros(3), torch.ones(4)) == 1.0


def test_the_threshold_keeps_the_share_asked_and_counts_the_unknown_let_through():
    known, unknown = torch.arange(100.0), torch.arange(50.0, 150.0)
    assert (known <= threshold(known, 0.95)).double().mean() == pytest.approx(0.95, abs=0.01)
    assert false_positives(known, unknown, 0.95) == pytest.approx(0.45, abs=0.02)


def test_the_mahalanobis_distance_is_numpys():
    generator = torch.Generator().manual_seed(1)
    embeddings = torch.randn(400, 6, generator=generator) @ torch.randn(6, 6, generator=generator)
    labels = torch.randint(0, 3, (400,), generator=generator)
    embeddings += labels[:, None].float() * 2
    fitted = Gaussians.fit(embeddings, labels, 3)
    x, y = embeddings.double().numpy(), labels.numpy()
    means = np.stack([x[y == k].mean(0) for k in range(3)])
    centred = x - means[y]
    covariance = centred.T @ centred / (len(x) - 1)
    precision = np.linalg.inv(covariance + 1e-3 * covariance.diagonal().mean() * np.eye(6))
    probe = torch.randn(5, 6, generator=generator)
    gaps = probe.double().numpy()[:, None] - means[None]
    expected = np.einsum("nkd,de,nke->nk", gaps, precision, gaps).min(1)
    assert np.allclose(fitted.distance(probe).numpy(), expected, rtol=1e-4)
    scores = score("mahalanobis", torch.zeros(5, 3), probe, fitted)
    assert torch.equal(scores, fitted.distance(probe))


def test_msp_and_energy_rise_as_the_logits_flatten():
    sure, unsure = torch.tensor([[8.0, 0.0, 0.0]]), torch.tensor([[0.5, 0.4, 0.3]])
    for kind in ("msp", "energy"):
        assert score(kind, unsure) > score(kind, sure)
    assert score("msp", sure, temperature=4.0) > score("msp", sure)  # calibrated: less sure
    with pytest.raises(convnet.ConvnetError, match=r"kind must be one of msp, energy, "
                       r"mahalanobis, knn\. Received: kind='lof'\."):
        score("lof", sure)
    assert CANDIDATES == ("msp", "energy", "mahalanobis", "knn")


def test_knn_is_one_minus_the_kth_nearest_cosine():
    reference = torch.eye(4)[:3] * 5  # three unit directions, scaled
    probe = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    found = score("knn", torch.zeros(2, 2), probe, reference=reference)
    # with 3 references, the 10th nearest is the 3rd: cosine 0 for both probes
    assert torch.allclose(found, torch.tensor([1.0, 1.0]))
    one = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    reference = torch.tensor([[1.0, 1.0, 0.0, 0.0]] * 12)
    assert float(score("knn", torch.zeros(1, 2), one, reference=reference)[0]) == \
        pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("spec", ["conv4k3-relu-maxpool2-fc16-relu-dropout0.2-fc",
                                  "conv4k3-bn-relu-gap-fc"])
def test_the_embedding_is_what_the_classifier_sees(spec):
    net = convnet.build(spec, "12x12x1", num_classes=3).eval()
    x = torch.randn(4, 1, 12, 12)
    embedding = net.forward_embedding(x)  # (4, D)
    assert embedding.dim() == 2 and len(embedding) == 4
    assert torch.allclose(net.classifier(embedding), net(x), atol=1e-6)
