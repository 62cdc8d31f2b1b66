"""The new head as logistic regression (`convnet.training.linear_head`): the fit is the
optimum of its objective (checked by autograd, the gradient at the folded weights), the
strength follows the data (none needed for separable classes, the most for labels that are
noise), a class's weight counts as copies of its images would, and deeper heads are left to
the epochs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import convnet
from convnet.data.balance import loss_weights
from convnet.training.linear_head import (
    STRENGTHS,
    _fit,
    choose_strength,
    fit_linear,
    inputs,
    linear,
)


def _features(count: int, dims: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    # (N, D, 1, 1) as a pooled body gives them, on another scale and offset per dimension
    raw = torch.randn(count, dims, generator=generator) * torch.linspace(0.1, 5, dims) + 3
    return raw[:, :, None, None]


def test_the_folded_layer_is_the_optimum_of_the_regularised_loss():
    network = convnet.build("conv4k3-relu-gap-fc", (8, 8, 3), 3)
    found = _features(90, 4, seed=0)  # the network's 4 filters: 4 features
    labels = (found[:, 0, 0, 0] > 3).long() + (found[:, 1, 0, 0] > 3).long()
    loss, strength = fit_linear(network, inputs(network, found)[None], labels, smoothing=0.0,
                                seed=0)
    assert strength in STRENGTHS

    # the objective in standardised units, at the weights the layer now holds
    x = inputs(network, found)  # (N, D)
    mean, scale = x.mean(0), x.std(0)
    layer = network.classifier
    weight = (layer.weight.detach().T * scale[:, None]).requires_grad_()  # (D, K)
    bias = (layer.bias.detach() + (mean / scale) @ weight.detach()).requires_grad_()
    standard = (x - mean) / scale
    objective = F.cross_entropy(standard @ weight + bias, labels) + \
        strength / 2 * weight.square().sum()
    objective.backward()
    assert weight.grad.abs().max() < 1e-3 and bias.grad.abs().max() < 1e-3
    # the network's own head gives the same logits as the fit
    logits = network.forward_head(found)  # (N, K)
    torch.testing.assert_close(logits, standard @ weight.detach() + bias.detach(),
                               rtol=1e-4, atol=1e-4)
    assert loss == pytest.approx(float(F.cross_entropy(logits, labels)), rel=1e-3)


def test_a_strength_given_is_fitted_without_folds_at_that_optimum(monkeypatch):
    """The refit of the head alone with its validation images: the strength its folds
    chose is given, no fold is fitted, and the layer is the optimum at that strength
    (autograd's gradient of the objective at the folded weights)."""
    from convnet.training import linear_head

    network = convnet.build("conv4k3-relu-gap-fc", (8, 8, 3), 2)
    found = _features(60, 4, seed=4)
    labels = (found[:, 2, 0, 0] > 3).long()
    monkeypatch.setattr(linear_head, "choose_strength", lambda *args: pytest.fail("folds"))
    _, strength = fit_linear(network, inputs(network, found)[None], labels, 0.0, 0,
                             strength=STRENGTHS[1])
    assert strength == STRENGTHS[1]
    x = inputs(network, found)  # (N, D)
    mean, scale = x.mean(0), x.std(0)
    weight = (network.classifier.weight.detach().T * scale[:, None]).requires_grad_()
    bias = (network.classifier.bias.detach() + (mean / scale) @ weight.detach()
            ).requires_grad_()
    objective = F.cross_entropy((x - mean) / scale @ weight + bias, labels) + \
        strength / 2 * weight.square().sum()
    objective.backward()
    assert weight.grad.abs().max() < 1e-3 and bias.grad.abs().max() < 1e-3


def test_separable_classes_take_the_least_strength_and_noise_the_most():
    found = _features(400, 5, seed=1).flatten(1)
    standard = (found - found.mean(0)) / found.std(0)
    separable = (found[:, 0] > 3).long()
    assert choose_strength(standard, separable, 2, 0.0, seed=0) == STRENGTHS[0]
    # more dimensions than images, and labels that none of them tells
    few = torch.randn(60, 100, generator=torch.Generator().manual_seed(2))
    noise = torch.randint(0, 2, (60,), generator=torch.Generator().manual_seed(3))
    assert choose_strength(few, noise, 2, 0.0, seed=0) == STRENGTHS[-1]


def test_a_class_weight_fits_as_that_many_copies_of_its_images_would():
    """Weighted mean cross-entropy with weights (1, 3) has the optimum of the unweighted
    loss over the data with the second class's images three times each."""
    generator = torch.Generator().manual_seed(4)
    x = torch.randn(40, 3, generator=generator)  # (N, D)
    labels = (x[:, 0] + 0.8 * torch.randn(40, generator=generator) > 0.7).long()
    weighted = _fit(x, labels, 2, 0.1, 0.0, torch.tensor([1.0, 3.0]))
    copies = torch.cat([x, x[labels == 1], x[labels == 1]])
    copied = _fit(copies, torch.cat([labels, labels[labels == 1].repeat(2)]), 2, 0.1, 0.0)
    for ours, reference in zip(weighted, copied, strict=True):
        torch.testing.assert_close(ours, reference, rtol=1e-3, atol=1e-3)


def test_weighing_the_classes_lifts_the_small_class_on_overlapping_features():
    network = convnet.build("conv4k3-relu-gap-fc", (8, 8, 3), 2)
    generator = torch.Generator().manual_seed(5)
    labels = torch.cat([torch.zeros(180), torch.ones(20)]).long()  # 9 to 1
    found = torch.randn(200, 4, generator=generator) + labels[:, None] * 0.7  # (N, D)
    seen = found[None]  # (1, N, D): one view

    def recall_of_the_small_class(weights: torch.Tensor | None) -> float:
        fit_linear(network, seen, labels, 0.0, 0, weights)
        chosen = network.classifier(found).argmax(1)  # (N,)
        return float((chosen[labels == 1] == 1).float().mean())
    plain = recall_of_the_small_class(None)
    weighed = recall_of_the_small_class(loss_weights(torch.bincount(labels)))
    assert weighed >= plain + 0.3, (plain, weighed)


def test_only_a_head_of_one_fully_connected_layer_is_fitted_this_way():
    assert linear(convnet.build("conv4k3-relu-gap-dropout0.2-fc", (8, 8, 3), 2)) is not None
    deeper = convnet.build("conv4k3-relu-gap-fc8-relu-fc", (8, 8, 3), 2)
    assert linear(deeper) is None
    with pytest.raises(ValueError, match="one fully connected layer"):
        fit_linear(deeper, _features(10, 4, seed=0).flatten(1)[None], torch.zeros(10).long(),
                   0.0, 0)


def test_the_views_are_the_networks_own_embeddings_of_each_image_and_its_mirror(tmp_path,
                                                                               monkeypatch):
    from convnet.data.pixels import Normalization
    from convnet.training.finetune import embeddings

    monkeypatch.setenv("CONVNET_CACHE", str(tmp_path))
    network = convnet.build("conv4k3-bn-relu6-gap-fc", (8, 8, 3), 2).eval()
    images = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    norm = Normalization(torch.full((3,), 0.5), torch.full((3,), 0.25))
    seen, raw = embeddings(network, images, norm, "views-test", torch.device("cpu"),
                           views=2)
    assert seen.shape == raw.shape == (2, 5, 4)
    for view, pixels in enumerate((images, images.flip(3))):
        expected = network.forward_embeddings(norm(pixels))
        torch.testing.assert_close(seen[view], expected[0])
        torch.testing.assert_close(raw[view], expected[1])

    def fails(*_):
        raise AssertionError("computed again instead of read from the cache")
    monkeypatch.setattr(network, "forward_embeddings", fails)
    again = embeddings(network, images, norm, "views-test", torch.device("cpu"), views=2)
    assert torch.equal(again[0], seen) and torch.equal(again[1], raw)


def test_the_heads_balanced_accuracy_is_the_evaluations_mean_recall():
    from convnet.runs.evaluate import Evaluation
    from convnet.training.finetune import scores

    generator = torch.Generator().manual_seed(6)
    logits = torch.randn(50, 4, generator=generator)  # (N, K)
    labels = torch.cat([torch.zeros(30), torch.ones(10), torch.full((10,), 3)]).long()
    confusion = torch.zeros(4, 4, dtype=torch.int64)  # class 2 absent: left out of the mean
    confusion.index_put_((labels, logits.argmax(1)), torch.ones(50, dtype=torch.int64),
                         accumulate=True)
    reference = Evaluation(["a", "b", "c", "d"], 0.0, confusion)
    loss, accuracy, balanced = scores(logits, labels)
    assert accuracy == pytest.approx(reference.accuracy)
    assert balanced == pytest.approx(reference.balanced_accuracy)
    assert loss == pytest.approx(float(F.cross_entropy(logits, labels)))
