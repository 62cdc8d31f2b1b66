"""How unlike its training images an input is, as the trained network itself sees it: the
candidate scores for answering "unknown", and how well a score tells known images from
unknown ones.

A network can only choose among the classes it knows, so an image of something else gets
an answer too, often a confident one. Each candidate turns what the network computes for
an image into one number, higher for "less like what I was trained on":

- ``msp``: 1 − the top calibrated probability (Hendrycks & Gimpel, 2017);
- ``energy``: −T·log Σ exp(logit / T), the free energy of the logits (Liu et al., 2020);
- ``mahalanobis``: the squared Mahalanobis distance of the classifier's input to the
  nearest class mean, with one covariance shared by the classes, both from the training
  images (Lee et al., 2018);
- ``knn``: 1 − the cosine similarity of the classifier's input to its `NEIGHBOURS`-th
  nearest training image's (Sun et al., 2022).

Which one serves best is measured (bench/unknown.py), not assumed. A run's detector
(`Detector`, kind `KIND`) is the Mahalanobis score of the classifier's input computed
without its last activation and scaled to unit length, as "Mahalanobis++" (Mueller & Hein,
2025) proposes: on the digits run against Fashion-MNIST and on a cat/dog fine-tune against
vehicles it told unknown from known better than every other candidate (bench/RESULTS.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import torch

from convnet.errors import ConvnetError
from convnet.runs.calibration import FEWEST, is_share

CANDIDATES = ("msp", "energy", "mahalanobis", "knn")
NEIGHBOURS = 10
SHRINK = 1e-3  # of the covariance's mean variance, added to its diagonal (a stable inverse)


@dataclass(frozen=True)
class Gaussians:
    """Class means (K, D) of the training embeddings and the precision (D, D) of their
    shared covariance."""

    means: torch.Tensor
    precision: torch.Tensor

    @classmethod
    def fit(cls, embeddings: torch.Tensor, labels: torch.Tensor, classes: int) -> Gaussians:
        x = embeddings.detach().double().cpu()  # (N, D)
        labels = labels.cpu()
        means = torch.stack([x[labels == k].mean(0) if (labels == k).any() else
                             torch.zeros(x.shape[1], dtype=x.dtype)
                             for k in range(classes)])  # (K, D)
        centred = x - means[labels]  # (N, D)
        covariance = centred.T @ centred / max(len(x) - 1, 1)  # (D, D)
        ridge = SHRINK * float(covariance.diagonal().mean()) or SHRINK
        precision = torch.linalg.inv(covariance + ridge * torch.eye(x.shape[1],
                                                                    dtype=x.dtype))
        return cls(means.float(), precision.float())

    @cached_property
    def factor(self) -> torch.Tensor:
        """(D, D) a factor F of the precision, ``precision == F @ F.T``: with it, the
        squared distance of x to a mean m is ``|x @ F - m @ F|²``, one (D, D) product per
        image instead of one per image and class."""
        precision = self.precision.double()
        factor, failed = torch.linalg.cholesky_ex(precision)
        if failed:  # not positive definite in float32: its eigen square root instead
            values, vectors = torch.linalg.eigh(precision)
            factor = vectors * values.clamp_min(0).sqrt()
        return factor.float()

    @cached_property
    def factored_means(self) -> torch.Tensor:
        """(K, D) the class means times `factor`."""
        return (self.means.double() @ self.factor.double()).float()

    def distance(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(N,) squared Mahalanobis distance of each embedding (N, D) to the nearest mean."""
        x = embeddings.detach().float().cpu() @ self.factor  # (N, D)
        gaps = x[:, None, :] - self.factored_means[None]  # (N, K, D), as the ONNX graph does
        return (gaps * gaps).sum(2).min(1).values  # (N,)


def score(kind: str, logits: torch.Tensor, embeddings: torch.Tensor | None = None,
          gaussians: Gaussians | None = None, temperature: float = 1.0,
          reference: torch.Tensor | None = None) -> torch.Tensor:
    """(N,) the ``kind`` score of each image, higher for less known.

    Args:
        logits: (N, classes), before calibration.
        embeddings: (N, D), the classifier's input (``mahalanobis`` and ``knn``).
        gaussians: fitted on the training embeddings (``mahalanobis``).
        temperature: the run's calibration (``msp`` and ``energy``).
        reference: the training images' embeddings (M, D) (``knn``).
    """
    scaled = logits.detach().float().cpu() / temperature
    if kind == "msp":
        return 1 - scaled.softmax(1).max(1).values
    if kind == "energy":
        return -temperature * torch.logsumexp(scaled, 1)
    if kind == "mahalanobis":
        return gaussians.distance(embeddings)
    if kind == "knn":
        known = unit(reference)  # (M, D)
        nearest = (unit(embeddings) @ known.T).topk(min(NEIGHBOURS, len(known)),
                                                    dim=1).values  # (N, k)
        return 1 - nearest[:, -1]
    raise ConvnetError(f"kind must be one of {', '.join(CANDIDATES)}. Received: "
                       f"kind={kind!r}.")


def auroc(known: torch.Tensor, unknown: torch.Tensor) -> float:
    """The chance that an unknown image scores higher than a known one (ties count half):
    the area under the ROC curve of telling them apart by the score."""
    values = torch.cat([known, unknown]).double()
    ranks = _ranks(values)  # (N,) 1-based, ties averaged
    unknown_ranks = ranks[len(known):].sum()
    count = len(unknown)
    return float((unknown_ranks - count * (count + 1) / 2) / (count * len(known)))


def _ranks(values: torch.Tensor) -> torch.Tensor:
    order = values.argsort(stable=True)
    ranks = torch.empty_like(values)
    ranks[order] = torch.arange(1, len(values) + 1, dtype=values.dtype)
    for value in values.unique()[torch.unique(values, return_counts=True)[1] > 1]:
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


CONFIDENCE = 0.9  # of the threshold keeping at least the share asked (see `threshold`)


def threshold(known: torch.Tensor, kept: float = 0.95) -> float:
    """The score at or under which at least ``kept`` of new known images fall, with
    `CONFIDENCE` over the draw of the ``known`` (validation) images: their k-th smallest
    score, k the smallest rank for which that holds (`confident_rank`). A plain quantile
    keeps ``kept`` only on average, and on 100 validation images the share of test images
    it keeps spreads by ±2 points around it; this keeps the promise for most draws, and
    tends to the quantile as the validation images grow. Too few images for any rank
    (under 45 for 95%): the highest of their scores."""
    if not len(known):
        return float("inf")
    rank = min(confident_rank(len(known), kept), len(known))
    return float(known.double().sort().values[rank - 1])


def confident_rank(count: int, kept: float, confidence: float = CONFIDENCE) -> int:
    """The smallest k for which the k-th smallest of ``count`` scores is at or above the
    ``kept`` quantile of their source with ``confidence``: the share of the source under
    the k-th smallest is Beta(k, count + 1 - k), and P(Beta(k, n + 1 - k) ≥ q) =
    P(Binomial(n, q) ≤ k - 1), so k - 1 is the ``confidence`` quantile of
    Binomial(count, kept). ``count + 1`` when no rank will do."""
    total = 0.0
    for successes in range(count + 1):
        total += math.exp(math.lgamma(count + 1) - math.lgamma(successes + 1)
                          - math.lgamma(count - successes + 1)
                          + successes * math.log(kept) + (count - successes) * math.log1p(-kept))
        if total >= confidence:
            return successes + 1
    return count + 1


def false_positives(known: torch.Tensor, unknown: torch.Tensor, kept: float = 0.95) -> float:
    """The share of unknown images taken for known when the threshold keeps exactly
    ``kept`` of these known images (the plain quantile: "FPR at 95% TPR" as papers report
    it, a measurement on test images rather than a threshold for new ones)."""
    cut = torch.quantile(known.double(), kept)
    return float((unknown.double() <= cut).double().mean())


UNKNOWN_FILE = "unknown.safetensors"  # in the run folder, beside the weights
KIND = "mahalanobis-unit"  # the detector's kind; runs with another (older) one have none
KEPT = 0.95  # the default share of known (validation) images that stays known
FIT_MOST = 2000  # training images the class means and covariance are fitted on, at most


@dataclass(frozen=True)
class Detector:
    """A run's "unknown" verdict: the Mahalanobis score of its features (the classifier's
    input without its last activation, `convnet.runs.Predictor.outputs`) scaled to unit
    length, and the validation images' scores, from which the threshold for any share kept
    is read.

    ``gaussians`` is None where the scores are computed elsewhere: an exported ONNX file
    computes them in its graph, and keeps only ``known`` in its metadata.
    """

    gaussians: Gaussians | None
    known: torch.Tensor  # (n,) the validation images' scores, ascending
    kind: str = KIND
    # share -> threshold, read once: every answer of a batch or a request asks again
    _cuts: dict[float, float] = field(default_factory=dict, compare=False, repr=False)

    def cut(self, kept: float) -> float:
        """The score above which an image is unknown, so that ``kept`` of the validation
        images stay known.

        Raises:
            ConvnetError: for a share outside (0, 1).
        """
        if not is_share(kept):
            raise ConvnetError("unknown must be the share of known images that stay known, "
                               "between 0 and 1 (e.g. 0.95), or 'off'. Received: "
                               f"unknown={kept!r}.")
        if kept not in self._cuts:
            self._cuts[kept] = threshold(self.known, kept)
        return self._cuts[kept]

    def scores(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(N,) the score of each image's features (N, D), higher for less known."""
        if self.gaussians is None:
            raise ConvnetError("This detector keeps only its threshold (it was read from an "
                               "exported file, whose graph computes the scores).")
        return self.gaussians.distance(unit(embeddings))

    def to_metadata(self) -> dict:
        """What an exported file needs beside its graph: the kind and the validation
        scores (any share's threshold is read from them as here)."""
        return {"kind": self.kind, "kept": KEPT, "cut": self.cut(KEPT),
                "known": [float(value) for value in self.known]}

    @classmethod
    def from_metadata(cls, found: dict) -> Detector:
        return cls(None, torch.tensor(found["known"], dtype=torch.float32), found["kind"])

    def to_bytes(self) -> bytes:
        from safetensors.torch import save

        return save({"means": self.gaussians.means.contiguous(),
                     "precision": self.gaussians.precision.contiguous(),
                     "known": self.known.contiguous()})

    @classmethod
    def from_bytes(cls, data: bytes, kind: str = KIND) -> Detector:
        from safetensors.torch import load

        found = load(data)
        return cls(Gaussians(found["means"], found["precision"]), found["known"], kind)


def fit_detector(train: tuple[torch.Tensor, torch.Tensor], val: torch.Tensor,
                 classes: int) -> Detector | None:
    """The detector from training embeddings and labels (the caller draws at most
    `FIT_MOST`, before computing them) and validation embeddings; None with fewer than
    `FEWEST` of those."""
    embeddings, labels = train
    if len(val) < FEWEST:
        return None
    gaussians = Gaussians.fit(unit(embeddings), labels, classes)
    return Detector(gaussians, gaussians.distance(unit(val)).sort().values)


def unit(features: torch.Tensor) -> torch.Tensor:
    """(N, D) each row scaled to length 1 (the exported graph does the same operations)."""
    features = features.detach().float().cpu()
    return features / features.norm(dim=1, keepdim=True).clamp_min(1e-12)


def share_from(text: str | float | None, available: bool) -> float | str | None:
    """``--unknown`` (or serve's ``?unknown=``) as given: the share kept known, ``off`` as
    None, and left out `KEPT` where the run has a detector (``available``), else None. A
    text that is not a number is returned as received, for `Detector.cut` to refuse."""
    if text is None:
        return KEPT if available else None
    if isinstance(text, str) and text.strip().lower() == "off":
        return None
    try:
        return float(text)
    except ValueError:
        return text
