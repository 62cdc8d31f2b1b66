"""The one inference path: uint8 pixels in, probabilities out.

`Predictor` normalises with the run's statistics, runs the network in large batches under
``inference_mode``, averages with the mirror image when the run uses flip test-time
augmentation, and applies softmax. `convnet predict`, `evaluate`, the report, validation
during training, and later the ONNX export (whose graph starts from the same raw pixels)
and the web server all go through it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from convnet.allocator import pass_size
from convnet.axes import chw_to_hwc
from convnet.data.dataset import Split
from convnet.data.pixels import Normalization
from convnet.errors import ConvnetError
from convnet.network.folding import folded, weights_key
from convnet.runs.calibration import (
    NONE,
    SET_LEVELS,
    Calibration,
    coverage,
    honesty,
    named_set,
)
from convnet.runs.evaluate import Evaluation, confusion_matrix
from convnet.runs.unknown import Detector


@dataclass
class Prediction:
    """Class probabilities for one image, or the reason it could not be read."""

    path: str
    probabilities: dict[str, float] | None = None  # class -> probability, best first
    error: str | None = None
    # the prediction set (`with_sets`): the classes that hold the true one `coverage` of
    # the time, most likely first
    set: list[str] | None = None
    coverage: float | None = None
    # "unlike the training images" (`convnet.runs.unknown`): the verdict, its score, and
    # the share of known images its threshold keeps; None where not asked or not possible
    unknown: bool | None = None
    unknown_score: float | None = None
    unknown_kept: float | None = None
    # the image as PNG, for a notebook to show beside the answer (`Run.predict_images`);
    # None: the file at ``path`` is shown where it can be read
    image: bytes | None = field(default=None, repr=False, compare=False)

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        return list((self.probabilities or {}).items())[:k]

    def text(self, k: int = 3) -> str:
        """``"0.92 dog, 0.08 cat"`` (and ``"; 90% set: dog"`` with a set), or the error."""
        if self.error:
            return f"error: {self.error}"
        answer = ", ".join(f"{p:.2f} {name}" for name, p in self.top(k))
        if self.unknown:
            answer = f"unknown (looks like: {answer})"
        if self.set is None:
            return answer
        # an empty set: no class is likely enough at this coverage
        return f"{answer}; {self.coverage:.0%} set: {', '.join(self.set) or 'none'}"

    def _repr_html_(self) -> str:
        """In a notebook: the image beside its probabilities, and the verdict."""
        from convnet.runs.display import prediction_html

        return prediction_html(self)

    def to_dict(self, k: int = 3) -> dict[str, Any]:
        """The JSON form (`convnet predict --json`, and the web API's answer)."""
        return {"file": self.path, "error": self.error,
                "top": [{"class": name, "probability": p} for name, p in self.top(k)],
                "probabilities": self.probabilities,
                **({} if self.set is None else {"set": self.set, "coverage": self.coverage}),
                **({} if self.unknown is None else {
                    "unknown": self.unknown, "unknown_score": self.unknown_score,
                    "unknown_kept": self.unknown_kept})}


class Predictions(list):
    """`Prediction`s in the order asked: a list, which a notebook shows side by side."""

    def _repr_html_(self) -> str:
        from convnet.runs.display import predictions_html

        return predictions_html(list(self))


def with_sets(predictions: list[Prediction], calibration: Calibration, coverage: float | None
              ) -> list[Prediction]:
    """``predictions`` with their prediction sets at ``coverage`` (None: as they are), the
    same from any backend, since they are read off the probabilities.

    Raises:
        ConvnetError: for a coverage outside (0, 1), or a run without conformal scores.
    """
    if coverage is None:
        return predictions
    floor = calibration.set_floor(coverage)  # a bad coverage or an old run: said first
    for prediction in predictions:
        if prediction.probabilities is not None:
            prediction.set = named_set(prediction.probabilities, floor)
            prediction.coverage = coverage
    return predictions


class Predictor:
    """A network with what turns pixels into its input and its output into probabilities.

    Batches go in channels-last (NHWC) by default: oneDNN's convolutions take it faster
    than NCHW on CPU, with the same logits to 1e-7 (bench/RESULTS.md, "speed inference"
    and "speed predict-photos": CIFAR-sized networks 1.5-2.2× at batch 256, `predict
    imagenet` on 400 photos 10.7 -> 8.4 s; the small digits network about the same).
    """

    def __init__(self, network: nn.Module, normalization: Normalization, classes: list[str],
                 flip_tta: bool = False, batch_size: int = 1024,
                 memory_format: torch.memory_format = torch.channels_last,
                 calibration: Calibration = NONE, detector: Detector | None = None):
        self.network, self.classes, self.flip_tta = network, list(classes), flip_tta
        self.normalization, self.batch_size = normalization, batch_size
        self.memory_format, self.calibration = memory_format, calibration
        self.detector = detector  # the run's "unknown" verdict, where it has one
        # (the weights' key, the network with its batch norms folded) for the passes
        self._answering: tuple[tuple, nn.Module] | None = None

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    def check(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W), or one image (C, H, W) as a batch of one.

        Raises:
            ConvnetError: for another dtype or shape than the network's input.
        """
        if not isinstance(images, torch.Tensor):
            raise ConvnetError(f"images must be a uint8 tensor (N, C, H, W). Received: "
                               f"{type(images).__name__}.")
        expected = getattr(self.network, "chw", None)
        if images.dim() == 3:
            images = images.unsqueeze(0)  # one image (C, H, W) -> (1, C, H, W)
        if images.dtype != torch.uint8 or images.dim() != 4 or (
                expected is not None and tuple(images.shape[1:]) != expected):
            want = "(N, C, H, W)" if expected is None else f"(N, {', '.join(map(str, expected))})"
            raise ConvnetError(f"images must be uint8 of shape {want}. Received: "
                               f"{images.dtype} {tuple(images.shape)}.")
        return images

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """The network's logits (N, classes) for uint8 images (N, C, H, W), on its device,
        before the run's calibration (`convnet.runs.calibration`)."""
        return self.outputs(images)[0]

    def outputs(self, images: torch.Tensor, embed: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits (N, classes), and with ``embed`` the "unknown" detector's features
        (N, D): the classifier's input without its last activation
        (`Network.forward_embeddings`), the mean over the flips with flip TTA), in one
        pass, through the network with its batch norms folded (`answering`)."""
        return self._outputs(self.check(images), self.answering(), embed)

    def answering(self) -> nn.Module:
        """The network that answers: `convnet.network.folding.folded`, made again only
        when the network's weights have changed since the last time."""
        key = weights_key(self.network)
        if self._answering is None or self._answering[0] != key:
            self._answering = (key, folded(self.network, self.memory_format))
        return self._answering[1]

    @torch.inference_mode()
    def _outputs(self, images: torch.Tensor, network: nn.Module, embed: bool
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        was_training = network.training
        network.eval()
        device = self.device
        normalization = self.normalization.to(device)
        logits, embeddings = [], []
        step = self.step(images)
        for start in range(0, len(images), step):
            batch = images[start : start + step].to(device, non_blocking=True)
            batch = normalization(batch).contiguous(memory_format=self.memory_format)
            views = [batch, batch.flip(3)] if self.flip_tta else [batch]
            if embed:  # the classifier on the embedding is the forward pass, split
                found = [network.forward_embeddings(view) for view in views]
                embeddings.append(sum(raw.float() for _, raw in found) / len(found))  # (b, D)
                logits.append(sum(network.classifier(e).float() for e, _ in found) /
                              len(found))
            else:
                logits.append(sum(network(view).float() for view in views) / len(views))
        network.train(was_training)
        if not logits:
            return torch.zeros(0, len(self.classes), device=device), None
        return torch.cat(logits), torch.cat(embeddings) if embed else None

    def step(self, images: torch.Tensor) -> int:
        """Images per forward pass: ``batch_size``, fewer for large images (`pass_size`)."""
        return min(self.batch_size, pass_size(images, self.device))

    def probabilities(self, images: torch.Tensor, logits: torch.Tensor | None = None
                      ) -> torch.Tensor:
        """Probabilities (N, classes) on the CPU, each row summing to 1, calibrated as the
        run answers. ``logits``: the images' `logits`, when the caller has them already."""
        raw = self.logits(images) if logits is None else logits
        return self.calibration.scale(raw).softmax(1).cpu()

    def unknown_cut(self, share: float) -> float:
        """The detector's threshold that keeps ``share`` of known images known.

        Raises:
            ConvnetError: for a run without a detector, or a share outside (0, 1).
        """
        if self.detector is None:
            raise ConvnetError("This run has no unknown detector: it was written before "
                               "this version's, or with too few validation images. Train it "
                               "again, or ask for no unknown verdict (--unknown off).")
        return self.detector.cut(share)

    def scored(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(calibrated probabilities (N, classes) on the CPU, and the "unknown" scores (N,)
        where the run has a detector, else None), in one pass."""
        if self.detector is None:
            return self.probabilities(images), None
        logits, embeddings = self.outputs(images, embed=True)
        return self.calibration.scale(logits).softmax(1).cpu(), self.detector.scores(embeddings)

    def rows(self, images: torch.Tensor) -> list[tuple[torch.Tensor, float | None]]:
        """Per image: its probabilities (classes,) and its "unknown" score (or None), the
        form a batch of requests is answered in (`convnet.serve.batching`)."""
        probabilities, scores = self.scored(images)
        return [(row, None if scores is None else float(scores[i]))
                for i, row in enumerate(probabilities)]

    def predict(self, images: torch.Tensor, names: Sequence[str] | None = None,
                unknown: float | None = None) -> list[Prediction]:
        """One `Prediction` per image, its classes ordered most likely first; with
        ``unknown`` (the share of known images kept, e.g. 0.95), the verdict "unknown" for
        images unlike the training images (`unknown_cut` says why it cannot be given)."""
        cut = None if unknown is None else self.unknown_cut(unknown)
        names = names or [str(i) for i in range(len(images))]
        rows = self.rows(images) if cut is not None else \
            [(row, None) for row in self.probabilities(images)]
        return [self.answer(name, row, score, unknown)
                for name, (row, score) in zip(names, rows)]

    def answer(self, name: str, row: torch.Tensor, score: float | None = None,
               unknown: float | None = None) -> Prediction:
        """The `Prediction` for one image's probabilities (classes,), with the verdict at
        ``unknown`` (the share kept known) when its score is given."""
        order = row.argsort(descending=True).tolist()
        answer = Prediction(name, {self.classes[i]: float(row[i]) for i in order})
        if unknown is not None and score is not None:
            answer.unknown = score > self.unknown_cut(unknown)
            answer.unknown_score, answer.unknown_kept = round(score, 4), unknown
        return answer

    def evaluate(self, split: Split, honest: bool = True,
                 logits: torch.Tensor | None = None) -> Evaluation:
        """Accuracy, log loss, per-class scores and the confusion matrix on a split; with
        ``honest``, how honest the probabilities are, before and after calibration.
        ``logits``: the split's `logits`, when the caller has them already (one pass).

        Raises:
            ConvnetError: if the split's images are not of the network's input shape.
        """
        expected = getattr(self.network, "chw", None)
        if expected is not None and tuple(split.images.shape[1:]) != expected:
            got, want = chw_to_hwc(split.images.shape[1:]), chw_to_hwc(expected)
            raise ConvnetError(f"The data's images are {'×'.join(map(str, got))} but the run "
                               f"was trained on {'×'.join(map(str, want))}. Evaluate on data "
                               "of the same shape.")
        raw = self.logits(split.images) if logits is None else logits
        logits, labels = self.calibration.scale(raw), split.labels.to(raw.device)
        loss = float(F.cross_entropy(logits, labels)) if len(labels) else float("nan")
        confusion = confusion_matrix(labels, logits.argmax(1), len(self.classes)).cpu()
        scores = None if not (honest and len(labels)) else \
            {"before": honesty(raw, labels).to_dict(),
             "after": honesty(raw, labels, self.calibration).to_dict(),
             **({} if not self.calibration.conformal else {"sets": {
                 str(level): dict(zip(("coverage", "mean_size"),
                                      coverage(self.calibration, raw, labels, level)))
                 for level in SET_LEVELS}})}
        return Evaluation(list(self.classes), loss, confusion, scores)


def evaluate_sharded(predictor: Predictor, split: Split, rank: int, ranks: int) -> Evaluation:
    """`Predictor.evaluate` with ``ranks`` processes each scoring one contiguous part of
    ``split`` (sizes may differ by one: no image is scored twice or padded in), the counts
    summed exactly and the loss as the sum over every image. Every rank gets the result."""
    from convnet.training.distributed import part, sum_all

    count = len(split)
    mine = part(count, rank, ranks)
    scored = predictor.evaluate(split.subset(torch.tensor(mine, dtype=torch.long)))
    confusion = sum_all(scored.confusion.clone())  # (K, K) int64
    losses = torch.tensor([scored.loss * len(mine) if len(mine) else 0.0],
                          dtype=torch.float64, device=confusion.device)
    total = float(sum_all(losses)[0])
    return Evaluation(scored.classes, total / max(count, 1), confusion)
