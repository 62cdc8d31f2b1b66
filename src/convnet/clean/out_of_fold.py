"""Out-of-fold probabilities: every training image scored by a model that never saw it.

The training images are dealt into ``folds`` parts, each class spread evenly over them.
For each part a model learns from the other parts and gives the part's probabilities, so
that an image's label cannot have been memorized by the model that judges it:

- ``cnn``: a brief run of the planned CNN (a share of its planned epochs) per fold;
- ``imagenet``: EfficientNet-Lite0's ImageNet features, computed once for every image
  (and cached), then one logistic-regression probe per fold on the pooled features.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace

import torch
import torch.nn.functional as F

from convnet.data.dataset import Dataset, Split
from convnet.errors import ConvnetError
from convnet.plan.resolve import resolve
from convnet.runs.predictor import Predictor
from convnet.training.callbacks import Callback
from convnet.training.config import TrainConfig

MIN_FOLDS = 2
PROBE_STEPS, PROBE_DECAY = 200, 1e-3  # L-BFGS steps and L2 penalty of the probes

Notify = Callable[[str], None]


def deal(labels: torch.Tensor, folds: int, seed: int) -> torch.Tensor:
    """The fold (0..folds-1) of each image (N,): each class shuffled, then dealt in turn.

    Raises:
        ConvnetError: for fewer than two classes, or a class with fewer images than folds.
    """
    counts = torch.bincount(labels)
    present = torch.nonzero(counts).flatten()
    if folds < MIN_FOLDS:
        raise ConvnetError(f"folds must be at least {MIN_FOLDS}. Received: folds={folds}.")
    if len(present) < 2:
        raise ConvnetError("Finding mislabelled images needs at least two classes: a model "
                           "cannot disagree with a label when there is one. Received: "
                           f"{len(present)} class(es) with training images.")
    smallest = int(counts[present].min())
    if smallest < folds:
        raise ConvnetError(f"{folds}-fold predictions need at least {folds} training images "
                           f"in every class; the smallest class has {smallest}. Add images, "
                           f"or lower folds (at least {MIN_FOLDS}, and at most {smallest}).")
    generator = torch.Generator().manual_seed(seed)
    fold = torch.empty_like(labels)
    for label in present:
        members = torch.nonzero(labels == label).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        fold[members] = torch.arange(len(members)) % folds
    return fold


def _part(dataset: Dataset, split: Split) -> Dataset:
    """A dataset of ``split`` alone, for one fold's brief run."""
    return Dataset(dataset.name, dataset.classes, split, None, dataset.source,
                   flip_ok=dataset.flip_ok, preprocess=dataset.preprocess)


def cnn_probabilities(dataset: Dataset, config: TrainConfig, fold: torch.Tensor,
                      notify: Notify, callbacks: Sequence[Callback] = ()) -> torch.Tensor:
    """(N, classes) out-of-fold probabilities of ``dataset.train`` from brief CNN runs of
    ``config`` (its epochs, no validation hold-out). ``callbacks`` see every fold's epochs,
    told first of them all (``on_epochs``)."""
    train = dataset.train
    folds = int(fold.max()) + 1
    found = torch.zeros(len(train), len(dataset.classes))
    config = replace(config, val_split=0.0, patience=None, time=None)
    for callback in callbacks:
        callback.on_epochs(folds * config.epochs)
    for number in range(folds):
        held = fold == number
        part = _part(dataset, train.subset(torch.nonzero(~held).flatten()))
        run = resolve(config, dataset=part, plan=False).prepare()
        run.loop.run(None, lambda network, split: None, callbacks)  # never scored: no val
        predictor = Predictor(run.network, run.normalization, dataset.classes, run.flip_tta,
                              config.eval_batch_size, run.batches.memory_format)
        found[held] = predictor.probabilities(train.images[held])
        agree = (found[held].argmax(1) == train.labels[held]).float().mean()
        notify(f"fold {number + 1}/{folds}: {config.epochs} epoch(s) of {run.arch[:40]} on "
               f"{int((~held).sum()):,} images; {agree:.1%} of the other "
               f"{int(held.sum()):,} agree with their labels")
    return found


def probe_probabilities(pooled: torch.Tensor, labels: torch.Tensor, classes: int,
                        fold: torch.Tensor, notify: Notify) -> torch.Tensor:
    """(N, classes) out-of-fold probabilities from a logistic-regression probe per fold on
    features (N, D), standardized with the training part's statistics."""
    folds = int(fold.max()) + 1
    found = torch.zeros(len(labels), classes)
    for number in range(folds):
        held = fold == number
        x, y = pooled[~held], labels[~held]  # (n, D), (n,)
        mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
        weights = _fit_probe((x - mean) / std, y, classes)
        logits = ((pooled[held] - mean) / std) @ weights[:-1] + weights[-1]  # (m, classes)
        found[held] = logits.softmax(1)
        agree = (found[held].argmax(1) == labels[held]).float().mean()
        notify(f"fold {number + 1}/{folds}: a probe on {int((~held).sum()):,} images' "
               f"features; {agree:.1%} of the other {int(held.sum()):,} agree with their "
               "labels")
    return found


def _fit_probe(x: torch.Tensor, y: torch.Tensor, classes: int) -> torch.Tensor:
    """Weights (D + 1, classes), the bias last, of an L2-penalized softmax regression."""
    weights = torch.zeros(x.shape[1] + 1, classes, requires_grad=True)
    optimizer = torch.optim.LBFGS([weights], max_iter=PROBE_STEPS, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimizer.zero_grad()
        logits = x @ weights[:-1] + weights[-1]  # (n, classes)
        value = F.cross_entropy(logits, y) + PROBE_DECAY * weights[:-1].pow(2).sum()
        value.backward()
        return value

    optimizer.step(loss)
    return weights.detach()


def brief_epochs(planned: int, share: int) -> int:
    """The epochs of one fold's run: ``1/share`` of the plan's, at least two."""
    return max(2, math.ceil(planned / share))
