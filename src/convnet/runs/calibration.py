"""Probabilities that mean what they say: a run's logits scaled by one temperature, fitted
on its validation images after training (Guo et al., 2017); prediction sets that hold the
true class a chosen share of the time (split conformal prediction on the same validation
images); and the scores that tell how honest a set of probabilities is.

A network trained to low loss on its training images is rarely right as often as its top
probability claims: more often on small data with augmentation (underconfident), less
often on large networks (overconfident). Dividing the logits by a temperature T changes
no ranking, so no answer and no accuracy, only how sure each answer says it is. T is
chosen to minimise the log loss of the validation images, which the weights never trained
on. Measured against the test images: expected calibration error (15 equal-width bins of
the top probability, binned as torchmetrics bins them, which the tests check it against;
written here because importing torchmetrics costs over a second in every process that
scores), log loss and Brier score, before and after.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

from convnet.errors import ConvnetError

BINS = 15
FEWEST = 20  # validation images below which nothing is fitted on them (too few to trust)
LIMITS = (0.05, 20.0)  # the temperatures a fit may reach
SET_LEVELS = (0.9, 0.95)  # the coverages evaluate measures prediction sets at


@dataclass(frozen=True)
class Calibration:
    """How a run's logits become probabilities: ``temperature`` divides them."""

    method: str = "none"  # "temperature", or "none" (the softmax as it is)
    temperature: float = 1.0
    fitted_on: int = 0  # validation images the temperature was fitted on
    note: str | None = None  # why there is none, where there is none
    # 1 - the calibrated probability of the true class, per validation image, ascending:
    # the conformal scores a prediction set's threshold is read from (None: no sets)
    conformal: list[float] | None = None

    def scale(self, logits: torch.Tensor) -> torch.Tensor:
        """``logits`` (N, classes) as the run answers with them."""
        return logits if self.temperature == 1.0 else logits / self.temperature

    def set_floor(self, coverage: float) -> float:
        """The probability a class needs to be in a prediction set that holds the true
        class ``coverage`` of the time: 1 - the conformal quantile (split conformal
        prediction: the ⌈(n + 1)·coverage⌉-th smallest of the n validation scores).

        Raises:
            ConvnetError: for a coverage outside (0, 1), or a run without conformal scores.
        """
        if not is_share(coverage):
            raise ConvnetError("set must be the share of images whose set holds the true "
                               f"class, between 0 and 1 (e.g. 0.9). Received: set={coverage!r}.")
        if not self.conformal:
            raise ConvnetError("This run has no conformal scores for prediction sets: it was "
                               "written before them, or without validation images. Train it "
                               "again (with a validation split) to get prediction sets.")
        return 1.0 - conformal_quantile(self.conformal, coverage, beyond=1.0)

    def prediction_set(self, probabilities: dict[str, float], coverage: float) -> list[str]:
        """The classes whose calibrated probability reaches the floor for ``coverage``, most
        likely first; empty when none is likely enough at this coverage (`in_set`)."""
        return named_set(probabilities, self.set_floor(coverage))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, saved: dict[str, Any] | None) -> Calibration:
        """A saved calibration; none (the softmax as it is) for runs written before it."""
        return cls() if saved is None else cls(**saved)


NONE = Calibration()


def is_share(value: object) -> bool:
    """Whether ``value`` is a number strictly between 0 and 1 (a share of images)."""
    return not isinstance(value, bool) and isinstance(value, int | float) and 0 < value < 1


def in_set(probabilities: torch.Tensor, floor: float) -> torch.Tensor:
    """(N, classes) bool: the classes of each image's prediction set, those whose
    probability reaches ``floor`` (`Calibration.set_floor`). A set may be empty: when a
    model is right more often than the coverage asked, the images it is least sure of get
    none, and that is what keeps the coverage at the level asked rather than at the
    model's accuracy (split conformal prediction as published; forcing the top class in
    would make every set of a 99%-accurate model cover 99%)."""
    return probabilities >= floor - 1e-12


def named_set(probabilities: dict[str, float], floor: float) -> list[str]:
    """`in_set` for one image's class -> probability, as class names, most likely first."""
    ranked = sorted(probabilities, key=probabilities.__getitem__, reverse=True)
    row = torch.tensor([[probabilities[name] for name in ranked]], dtype=torch.float64)
    return [name for name, inside in zip(ranked, in_set(row, floor)[0].tolist()) if inside]


def conformal_quantile(ascending: Sequence[float], share: float, beyond: float) -> float:
    """The ⌈(n + 1)·share⌉-th smallest of n scores (``beyond`` when that is past the last):
    a new image from the same source scores at most this with a chance of at least
    ``share`` (split conformal prediction), where the plain quantile falls short by up to
    1/n."""
    rank = math.ceil((len(ascending) + 1) * share)
    return float(ascending[rank - 1]) if rank <= len(ascending) else beyond


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature that minimises the log loss of ``logits`` (N, classes) against
    ``labels`` (N,): one parameter, log T, by L-BFGS from T = 1."""
    logits, labels = logits.detach().double().cpu(), labels.cpu()
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.5, max_iter=100, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    low, high = LIMITS
    return float(log_t.detach().exp().clamp(low, high))


def calibrate(logits: torch.Tensor, labels: torch.Tensor) -> Calibration:
    """The calibration fitted on validation ``logits`` (N, classes) and ``labels`` (N,)."""
    if len(labels) < FEWEST:
        return Calibration(note=f"{len(labels)} validation image(s): too few to fit a "
                                f"temperature on (at least {FEWEST})")
    temperature = round(fit_temperature(logits, labels), 4)
    probabilities = (logits.detach().double().cpu() / temperature).softmax(1)  # (N, classes)
    true = probabilities[torch.arange(len(labels)), labels.cpu()]  # (N,)
    scores = sorted(round(float(1 - p), 6) for p in true)
    return Calibration("temperature", temperature, len(labels), conformal=scores)


def coverage(calibration: Calibration, logits: torch.Tensor, labels: torch.Tensor,
             level: float) -> tuple[float, float]:
    """(share of the images whose prediction set holds the true class, mean set size) at
    ``level``, for ``logits`` (N, classes) and ``labels`` (N,)."""
    probabilities = calibration.scale(logits.detach().double().cpu()).softmax(1)
    members = in_set(probabilities, calibration.set_floor(level))  # (N, classes)
    held = members[torch.arange(len(labels)), labels.cpu()]
    return float(held.double().mean()), float(members.sum(1).double().mean())


@dataclass(frozen=True)
class Honesty:
    """How well probabilities match how often they are right (lower is better for all)."""

    ece: float  # expected calibration error over `BINS` bins of the top probability
    nll: float  # log loss
    brier: float  # mean squared distance to the one-hot truth, summed over the classes

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def honesty(logits: torch.Tensor, labels: torch.Tensor,
            calibration: Calibration = NONE) -> Honesty:
    """The scores of the probabilities ``calibration`` makes of ``logits`` (N, classes)
    for ``labels`` (N,)."""
    scaled = calibration.scale(logits.detach().float().cpu())
    labels = labels.cpu()
    probabilities = scaled.softmax(1)  # (N, classes)
    truth = F.one_hot(labels, probabilities.shape[1]).float()  # (N, classes)
    brier = ((probabilities - truth) ** 2).sum(1).mean()
    return Honesty(expected_calibration_error(probabilities, labels),
                   float(F.cross_entropy(scaled, labels)), float(brier))


def _binned(probabilities: torch.Tensor, labels: torch.Tensor):
    """(bin index (N,), top probability (N,), right (N,)): bins [k/15, (k+1)/15), and a
    last one for a top probability of exactly 1."""
    confidence, guess = probabilities.double().max(1)  # (N,), (N,)
    edges = torch.linspace(0, 1, BINS + 1, dtype=torch.float64)
    index = torch.bucketize(confidence, edges, right=True) - 1  # (N,) in 0..BINS
    return index, confidence, (guess == labels).double()


def expected_calibration_error(probabilities: torch.Tensor, labels: torch.Tensor) -> float:
    """Σ over bins of |share right − mean top probability| × share of the images in the
    bin, for ``probabilities`` (N, classes) and ``labels`` (N,)."""
    if not len(labels):
        return float("nan")
    index, confidence, right = _binned(probabilities, labels.cpu())
    gap = torch.zeros(BINS + 1, dtype=torch.float64).scatter_add_(0, index, confidence - right)
    return float(gap.abs().sum() / len(labels))


def reliability(logits: torch.Tensor, labels: torch.Tensor, calibration: Calibration = NONE
                ) -> list[dict[str, float]]:
    """Per bin of the top probability (`BINS` equal widths): its images, their mean top
    probability and how often the top class was right (a reliability diagram's bars)."""
    probabilities = calibration.scale(logits.detach().float().cpu()).softmax(1)
    index, confidence, right = _binned(probabilities, labels.cpu())
    index = index.clamp(max=BINS - 1)  # a top probability of 1 is drawn in the last bar
    bins = []
    for number in range(BINS):
        inside = index == number
        count = int(inside.sum())
        bins.append({"low": number / BINS, "high": (number + 1) / BINS, "images": count,
                     "confidence": float(confidence[inside].mean()) if count else 0.0,
                     "accuracy": float(right[inside].mean()) if count else 0.0})
    return bins
