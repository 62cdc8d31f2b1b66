"""A trained run: the network with everything needed to use it, loaded without pickle."""

from __future__ import annotations

from dataclasses import replace
from os import PathLike
from pathlib import Path
from typing import Any

import torch

from convnet import data as datasets
from convnet import display
from convnet.allocator import keep_freed_memory
from convnet.axes import to_chw
from convnet.data.dataset import Dataset, Split, Validation
from convnet.data.dedupe import without_copies
from convnet.data.preprocess import Preprocess, load_image
from convnet.errors import ConvnetError, RunError
from convnet.features import copies
from convnet.network import Network, build
from convnet.network.arithmetic import Arithmetic, explain_at
from convnet.network.inside import feature_maps, gradcam
from convnet.network.shapes import LayerInfo
from convnet.runs.builtin import BUILTIN_SOURCE, is_builtin, read_builtin
from convnet.runs.evaluate import Evaluation
from convnet.runs.format import RunRecord, read_run, sha256
from convnet.runs.predictor import Prediction, Predictions, Predictor
from convnet.runs.unknown import KIND, Detector

Image = str | Path | torch.Tensor  # a file, or uint8 pixels (C, H, W)


class Run:
    """A trained network, its classes, input, preprocessing and normalisation."""

    def __init__(self, network: Network, record: RunRecord, path: Path | None = None,
                 detector: Detector | None = None):
        self.network = network.eval()
        self.record = record
        self.path = path
        self.classes: list[str] = list(record.classes)
        self.predictor = Predictor(self.network, record.normalization, self.classes,
                                   flip_tta=record.flip_tta, calibration=record.calibration,
                                   detector=detector)

    def __repr__(self) -> str:
        where = "built-in" if self.path is None else str(self.path)
        test = (self.record.metrics.test or {}).get("accuracy")
        scored = "" if test is None else f", test accuracy {test:.2%}"
        return (f"Run({where}: {self.record.arch}, {len(self.classes)} classes, input "
                f"{'×'.join(map(str, self.input_shape))}{scored})")

    def _repr_html_(self) -> str:
        """In a notebook: what the run is, its scores, curves and confusion matrix."""
        from convnet.runs.display import run_html

        return run_html(self)

    @property
    def meta(self) -> dict[str, Any]:
        """model.json as a dict (the record's JSON form)."""
        return self.record.to_dict()

    @property
    def flip_tta(self) -> bool:
        return self.record.flip_tta

    @property
    def builtin(self) -> bool:
        """A built-in run (`convnet.runs.builtin`): it has no data of its own."""
        return self.record.data.source.startswith(BUILTIN_SOURCE)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.network.input_shape

    @property
    def preprocess(self) -> Preprocess:
        """How files become input: the one saved at training time."""
        return self.record.preprocess

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Probabilities (N, classes) for uint8 images (N, C, H, W) of the run's input shape."""
        return self.predictor.probabilities(images)

    def image(self, image: Image) -> torch.Tensor:
        """A file (read with the run's preprocessing) or a uint8 (C, H, W) tensor -> the uint8
        (C, H, W) image the network sees."""
        if isinstance(image, str | Path):
            return to_chw(torch.from_numpy(load_image(image, self.preprocess)))
        expected = self.network.chw
        if not isinstance(image, torch.Tensor) or image.dtype != torch.uint8 or \
                tuple(image.shape) != expected:
            got = f"{image.dtype} {tuple(image.shape)}" if isinstance(image, torch.Tensor) \
                else type(image).__name__
            raise ConvnetError(f"image must be a file path or a uint8 tensor of shape "
                               f"{expected}. Received: {got}.")
        return image

    def input(self, image: Image) -> torch.Tensor:
        """The normalised batch of one, (1, C, H, W) float32, that the first layer receives."""
        return self.predictor.normalization(self.image(image)[None])

    def class_index(self, name: str | int | None, image: Image) -> int:
        """A class by name or index; None: the predicted class of ``image``."""
        if name is None:
            return int(self.predict(self.image(image)).argmax())
        if isinstance(name, int) and 0 <= name < len(self.classes):
            return name
        if name in self.classes:
            return self.classes.index(name)
        raise ConvnetError(f"Unknown class {name!r}. This run's classes: "
                           f"{', '.join(self.classes)}.")

    def feature_maps(self, image: Image) -> list[tuple[LayerInfo, torch.Tensor]]:
        """Every layer's output for one image, in spec order: [(LayerInfo, tensor)]."""
        return feature_maps(self.network, self.input(image))

    def gradcam(self, image: Image, cls: str | int | None = None) -> torch.Tensor:
        """Grad-CAM heatmap (H, W) in [0, 1] for class ``cls`` (default: the predicted one)."""
        pixels = self.image(image)  # a file is read once, for both uses below
        return gradcam(self.network, self.input(pixels), self.class_index(cls, pixels))

    def explain_at(self, image: Image, layer: int, y: int, x: int,
                   filter_index: int = 0) -> Arithmetic:
        """The dot product behind one conv output value; see
        `convnet.network.arithmetic.explain_at`."""
        return explain_at(self.network, self.input(image), layer, y, x, filter_index)

    def predict_files(self, paths: list[str | Path], predictor: Predictor | None = None,
                      unknown: float | None = None) -> Predictions:
        """One `Prediction` per file; unreadable files get an error instead of probabilities
        (a list, which a notebook shows as the images beside their probabilities).

        ``predictor``: another backend for the same images (e.g. an exported model's);
        ``unknown``: the share of known images kept by the "unknown" verdict (None: no
        verdict; the run's own network gives it, with its detector).
        """
        if unknown is not None:
            self.predictor.unknown_cut(unknown)  # a bad share or no detector: before decoding
        results = Predictions()
        loaded: list[tuple[int, torch.Tensor]] = []
        for path in paths:
            try:
                loaded.append((len(results), self.image(path)))  # (C, H, W) uint8
                results.append(Prediction(str(path)))
            except ConvnetError as error:
                reason = str(error).removeprefix(f"{path}: ")  # the row already names the file
                results.append(Prediction(str(path), error=reason))
        if loaded:
            batch = torch.stack([image for _, image in loaded])  # (N, C, H, W)
            answered = _answers(self.predictor, predictor, batch, unknown)
            for (index, _), answer in zip(loaded, answered):
                results[index] = replace(answer, path=results[index].path)
        return results

    def predict_images(self, images: torch.Tensor, names: list[str] | None = None,
                       unknown: float | None = None) -> Predictions:
        """One `Prediction` per uint8 image (N, C, H, W), or for one image (C, H, W), of the
        run's input shape; each keeps its image, so that a notebook shows it beside the
        answer. ``names`` default to the images' numbers; ``unknown`` as in `predict_files`.
        """
        batch = images.unsqueeze(0) if images.dim() == 3 else images  # (N, C, H, W)
        answered = Predictions(self.predictor.predict(batch, names, unknown))
        for answer, pixels in zip(answered, batch):
            answer.image = display.pixels_png(pixels)
        return answered

    def evaluate_data(self, data: str | Path | None = None) -> Evaluation:
        """Score the run on labelled images (see `labelled`)."""
        return self.evaluate(self.labelled(data)[0])

    def labelled(self, data: str | Path | None = None) -> tuple[Split, str]:
        """The images `evaluate_data` scores, and what they are.

        ``data``: any labelled images of the run's classes (a folder with or without
        test/, a CSV, a dataset name: `convnet.data.labelled`). Default: the run's own data:
        its test split, or, when it has none, the validation images training held out.

        Raises:
            ConvnetError: for other classes, or own data with neither split.
        """
        if data is not None:
            return datasets.labelled(data, self.classes, self.preprocess,
                                     self.record.class_ids)
        if self.builtin:
            raise ConvnetError(f"The built-in {self.record.data.name!r} run has no data of its "
                               "own here. Give data=FOLDER whose class folders are its class "
                               "names (e.g. 'tabby', 'Egyptian_cat') or ImageNet synset ids.")
        config = self.record.config
        dataset = self.own_data()
        if dataset.classes != self.classes:
            raise ConvnetError(f"The data's classes {dataset.classes} differ from the run's "
                               f"{self.classes}: {dataset.name!r} changed since training. "
                               "Give data=FOLDER of labelled images of the run's classes.")
        if dataset.test is not None:
            return dataset.test, f"{dataset.name} test"
        rule = self.record.validation or Validation.for_run(dataset, config.val_split,
                                                          config.seed)
        _, val = rule.draw(dataset)
        if val is None:
            raise ConvnetError(f"data={dataset.name!r} has no test images and this run held "
                               "none out for validation. Give data=FOLDER of labelled images "
                               "of its classes.")
        return val, f"{dataset.name} validation images (held out in training)"

    def own_data(self, data: str | Path | None = None) -> Dataset:
        """The run's data (or ``data``) decoded as it was for training, without the copies
        a ``dedupe`` run dropped."""
        config = self.record.config
        dataset = datasets.load(data or config.data, preprocess=self.preprocess,
                                near=config.dedupe,
                                finders=copies.finders())
        return without_copies(dataset)[0] if config.dedupe else dataset

    def evaluate(self, split: Split) -> Evaluation:
        """Accuracy, per-class precision/recall/F1 and the confusion matrix on a split."""
        return self.predictor.evaluate(split)


def load(path: str | Path) -> Run:
    """Load a run folder written by `convnet.train`, or a built-in run by name
    (``"imagenet"``: `convnet.runs.builtin`). No pickle is involved.

    Raises:
        RunError: if files are missing, damaged, or from an incompatible version.
    """
    keep_freed_memory()  # as the CLI: photo passes reuse freed blocks (`convnet.allocator`)
    if not isinstance(path, str | PathLike):
        raise ConvnetError("path must be a run folder (a str or Path), e.g. "
                           f"'runs/digits-default-...'. Received: path={path!r} "
                           f"({type(path).__name__}).")
    if is_builtin(path):
        folder, record, state = read_builtin(str(path))
    else:
        folder = Path(path)
        record, state = read_run(folder)
    try:
        network = build(record.spec, record.input_shape, len(record.classes))
    except ConvnetError as error:
        raise RunError(f"{folder} cannot be loaded: its spec does not build ({error}).") \
            from None
    differences = network.differences(state)
    if differences:
        raise RunError(f"{folder / 'model.safetensors'} does not fit the spec in model.json: "
                       f"{'; '.join(differences[:5])}.")
    network.load_state_dict(state)
    return Run(network, record, folder, _detector(folder, record))


def _answers(own: Predictor, other: Predictor | None, batch: torch.Tensor,
             unknown: float | None) -> list[Prediction]:
    """The answers of ``other`` (or the run's own predictor). An exported file written
    before detectors has no "unknown" scores: then the run's own network gives them."""
    chosen = own if other is None else other
    if unknown is None or chosen.detector is not None:
        return chosen.predict(batch, unknown=unknown)
    answered = chosen.predict(batch)
    for answer, verdict in zip(answered, own.predict(batch, unknown=unknown)):
        answer.unknown, answer.unknown_score = verdict.unknown, verdict.unknown_score
        answer.unknown_kept = unknown
    return answered


def _detector(folder: Path, record: RunRecord) -> Detector | None:
    """The run's "unknown" detector, checked against the SHA-256 model.json gives it."""
    if not record.unknown or record.unknown.get("kind") != KIND:
        return None  # none, or an earlier kind whose scores this version does not compute
    path = folder / record.unknown["file"]
    try:
        data = path.read_bytes()
    except OSError as error:
        raise RunError(f"{path} cannot be read ({error.strerror}); restore it or retrain.") \
            from None
    if sha256(data) != record.unknown["sha256"]:
        raise RunError(f"{path} does not match the SHA-256 in model.json: the file is "
                       "damaged or from another run. Restore it or retrain.")
    return Detector.from_bytes(data)
