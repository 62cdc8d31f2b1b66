"""A new classifier of one fully connected layer, fitted on the body's cached features as
L2-regularised logistic regression: full batch, L-BFGS, on features standardised per
dimension, the strength chosen by k-fold cross-validation on the training images alone (the
validation images stay unseen for the calibration and the "unknown" detector). The
standardisation is then folded into the layer's weights, so the network is unchanged.

Why not the head's own optimizer: 30 AdamW epochs on the same features scored up to 2.5
points lower on the test images of two of three photo folders and the same on the third
(Lite0 at 128 px: cat/dog 77.0-79.3% against 79.5-80.5%, six 62.3-64.7% against
63.0-66.0%, four 86-88% both; `python -m bench finetune head-fit`), and its probabilities
needed a calibration temperature of 4 where these need about 1. With 1,280 features and a
few hundred images the head is under-determined; the strength that decides it is picked
here by measurement, not fixed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from convnet.network import Network

# L2 strengths weighed, on weights over standardised features (per mean cross-entropy)
STRENGTHS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
FOLDS = 3  # cross-validation folds; fewer images than 2 per fold: the middle strength
MAX_ITERATIONS = 100  # L-BFGS iterations per fit, at most
# L-BFGS stops once no gradient entry exceeds this (torch's default 1e-7 polishes the loss
# in its fifth decimal): the fits took a third less time on three photo folders, their test
# accuracy within one image of 300 ("finetune head-fit", bench/HISTORY.md)
GRADIENT_TOLERANCE = 1e-4


def linear(network: Network) -> nn.Linear | None:
    """The head's one fully connected layer, where the head is that layer alone (after a
    flatten, maybe a dropout: layers without weights); None for deeper heads."""
    head = network.body[network.head_start:]
    weighted = [module for module in head if any(True for _ in module.parameters())]
    if len(weighted) != 1 or not isinstance(weighted[0], nn.Linear) or \
            weighted[0] is not network.classifier:
        return None
    return weighted[0]


def inputs(network: Network, found: torch.Tensor) -> torch.Tensor:
    """What the classifier sees for cached features (N, D, h, w): the head's layers before
    it, in eval mode (a dropout passes through) -> (N, features)."""
    head = network.body[network.head_start:]
    was_training = head.training
    head.eval()
    x = found
    with torch.no_grad():
        for module in head:
            if module is network.classifier:
                break
            x = module(x)
    head.train(was_training)
    return x.flatten(1).float()  # (N, features)


def fit_linear(network: Network, seen: torch.Tensor, labels: torch.Tensor,
               smoothing: float, seed: int, weights: torch.Tensor | None = None,
               strength: float | None = None) -> tuple[float, float]:
    """Fit ``network``'s classifier on what it sees of V views of N images, (V, N, D)
    (`inputs`, or `convnet.training.finetune.embeddings`), and ``labels`` (N,); returns
    (the fit's mean training cross-entropy, the strength chosen). The strength is chosen
    on the first view (the views of one image must not fall in different folds), the fit
    is on all. The same seed gives the same folds. ``weights`` (K,): each class's weight
    in the loss (`convnet.data.balance.loss_weights`), in the fit and in the folds' scores
    alike; None weighs every image the same. ``strength``: the L2 strength, chosen before
    (the folds are then not fitted)."""
    layer = linear(network)
    if layer is None:
        raise ValueError("fit_linear needs a head of one fully connected layer")
    views = len(seen)
    x = seen.flatten(0, 1).float()  # (V·N, D), view after view
    labels = labels.to(x.device)
    mean, scale = x.mean(0), x.std(0)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    x = (x - mean) / scale  # (V·N, D), standardised
    classes = layer.out_features
    weights = None if weights is None else weights.to(x)
    if strength is None:
        strength = choose_strength(x[: len(labels)], labels, classes, smoothing, seed,
                                   weights)
    labels = labels.repeat(views)  # (V·N,)
    weight, bias = _fit(x, labels, classes, strength, smoothing, weights)  # (D, K), (K,)
    with torch.no_grad():  # logits = ((x - mean) / scale) @ weight + bias, folded
        layer.weight.copy_((weight / scale[:, None]).T.to(layer.weight))
        layer.bias.copy_((bias - (mean / scale) @ weight).to(layer.bias))
        return float(F.cross_entropy(x @ weight + bias, labels, weight=weights)), strength


def choose_strength(x: torch.Tensor, labels: torch.Tensor, classes: int,
                    smoothing: float, seed: int, weights: torch.Tensor | None = None
                    ) -> float:
    """The strength of `STRENGTHS` whose fits score the lowest held-out cross-entropy over
    `FOLDS` folds of standardised features ``x`` (N, D), each class weighed by ``weights``
    (K,) where given."""
    if len(labels) < 2 * FOLDS:
        return STRENGTHS[len(STRENGTHS) // 2]
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    folds = [part.to(x.device) for part in order.chunk(FOLDS)]
    losses = [0.0] * len(STRENGTHS)
    for held in range(FOLDS):
        kept = torch.cat([part for index, part in enumerate(folds) if index != held])
        fitted = None
        # strongest first, each fit starting from the last: a weaker strength moves the
        # weights a little further, and converges in fewer steps from there
        for step in reversed(range(len(STRENGTHS))):
            fitted = _fit(x[kept], labels[kept], classes, STRENGTHS[step], smoothing,
                          weights, fitted)
            logits = x[folds[held]] @ fitted[0] + fitted[1]  # (n, K)
            losses[step] += float(F.cross_entropy(logits, labels[folds[held]],
                                                  weight=weights, reduction="sum"))
    return STRENGTHS[min(range(len(STRENGTHS)), key=losses.__getitem__)]


def _fit(x: torch.Tensor, labels: torch.Tensor, classes: int, strength: float,
         smoothing: float, weights: torch.Tensor | None = None,
         start: tuple[torch.Tensor, torch.Tensor] | None = None
         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights (D, K) and bias (K,) minimising mean cross-entropy (each class weighed by
    ``weights`` where given) + strength/2 · |W|², from ``start`` (zeros when None)."""
    if start is None:
        start = (torch.zeros(x.shape[1], classes, device=x.device),
                 torch.zeros(classes, device=x.device))
    weight, bias = (tensor.clone().requires_grad_() for tensor in start)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=MAX_ITERATIONS,
                                  tolerance_grad=GRADIENT_TOLERANCE,
                                  line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(x @ weight + bias, labels, weight=weights,
                               label_smoothing=smoothing) + strength / 2 * weight.square().sum()
        loss.backward()
        return loss
    with torch.enable_grad():
        optimizer.step(closure)
    return weight.detach(), bias.detach()
