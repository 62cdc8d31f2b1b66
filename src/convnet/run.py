"""A trained run on disk: ``model.safetensors`` + ``model.json``, loaded without pickle."""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from convnet import __version__, datasets, inspect
from convnet.datasets import Split
from convnet.errors import ConvnetError, RunError
from convnet.evaluate import Evaluation, evaluate_split, normalize, predict_logits
from convnet.layers import LayerInfo
from convnet.model import Network, build
from convnet.preprocess import Preprocess, load_image
from convnet.rundir import write_atomic, write_json

RUN_FORMAT = 1  # bump when model.json or the weight names change incompatibly
WEIGHTS, META, METRICS = "model.safetensors", "model.json", "metrics.csv"
DATA_REPORT = "data_report.json"  # folder data: what the scan skipped and why


def library_versions() -> dict[str, str]:
    return {"convnet": __version__, "python": platform.python_version(),
            "torch": torch.__version__, "numpy": np.__version__}


def save_weights(folder: Path, network: Network) -> str:
    """Write the weights atomically; returns their SHA-256 for model.json."""
    state = {name: tensor.detach().cpu().contiguous()
             for name, tensor in network.state_dict().items()}
    data = save_safetensors(state)
    write_atomic(folder / WEIGHTS, data)
    return hashlib.sha256(data).hexdigest()


@dataclass
class Prediction:
    """Class probabilities for one image, or the reason it could not be read."""

    path: str
    probabilities: dict[str, float] | None = None  # class -> probability, best first
    error: str | None = None

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        return list((self.probabilities or {}).items())[:k]

    def text(self, k: int = 3) -> str:
        """``"0.92 dog, 0.08 cat"``, or the error."""
        if self.error:
            return f"error: {self.error}"
        return ", ".join(f"{p:.2f} {name}" for name, p in self.top(k))


class Run:
    """A trained network with everything needed to use it: classes, input, normalisation."""

    def __init__(self, network: Network, meta: dict[str, Any], path: Path | None = None):
        self.network = network.eval()
        self.meta = meta
        self.path = path
        self.classes: list[str] = list(meta["classes"])
        norm = meta["normalization"]
        self.mean = torch.tensor(norm["mean"], dtype=torch.float32)
        self.std = torch.tensor(norm["std"], dtype=torch.float32)
        self.flip_tta = meta.get("tta") == "flip"  # runs from before TTA have no key

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.network.input_shape

    @property
    def preprocess(self) -> Preprocess:
        """How files become input: the one saved at training time."""
        saved = self.meta.get("preprocess")
        if saved:
            return Preprocess.from_dict(saved)
        height, width, channels = self.input_shape
        return Preprocess(height, width, channels)

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Probabilities (N, classes) for uint8 images (N, C, H, W) of the run's input shape."""
        expected = self.network.input_shape
        if images.dim() == 3:
            images = images.unsqueeze(0)  # one image (C, H, W) -> (1, C, H, W)
        if images.dtype != torch.uint8 or tuple(images.shape[1:]) != (
                expected[2], expected[0], expected[1]):
            raise ConvnetError(f"predict expects uint8 images of shape (N, {expected[2]}, "
                               f"{expected[0]}, {expected[1]}). Received: {images.dtype} "
                               f"{tuple(images.shape)}.")
        logits = predict_logits(self.network, images, self.mean, self.std,
                                flip_tta=self.flip_tta)
        return logits.softmax(1).cpu()

    def image(self, image: str | Path | torch.Tensor) -> torch.Tensor:
        """A file (read with the run's preprocessing) or a uint8 (C, H, W) tensor -> the uint8
        (C, H, W) image the network sees."""
        if isinstance(image, str | Path):
            pixels = torch.from_numpy(load_image(image, self.preprocess))  # (H, W, C)
            return pixels.permute(2, 0, 1).contiguous()
        height, width, channels = self.input_shape
        if image.dtype != torch.uint8 or tuple(image.shape) != (channels, height, width):
            raise ConvnetError(f"Expected a file or a uint8 image of shape ({channels}, "
                               f"{height}, {width}). Received: {image.dtype} "
                               f"{tuple(image.shape)}.")
        return image

    def input(self, image: str | Path | torch.Tensor) -> torch.Tensor:
        """The normalised batch of one, (1, C, H, W) float32, that the first layer receives."""
        return normalize(self.image(image)[None], self.mean, self.std)

    def class_index(self, name: str | int | None, image: str | Path | torch.Tensor) -> int:
        """A class by name or index; None: the predicted class of ``image``."""
        if name is None:
            return int(self.predict(self.image(image)).argmax())
        if isinstance(name, int) and 0 <= name < len(self.classes):
            return name
        if name in self.classes:
            return self.classes.index(name)
        raise ConvnetError(f"Unknown class {name!r}. This run's classes: "
                           f"{', '.join(self.classes)}.")

    def feature_maps(self, image: str | Path | torch.Tensor
                     ) -> list[tuple[LayerInfo, torch.Tensor]]:
        """Every layer's output for one image, in spec order: [(LayerInfo, tensor)]."""
        return inspect.feature_maps(self.network, self.input(image))

    def gradcam(self, image: str | Path | torch.Tensor,
                cls: str | int | None = None) -> torch.Tensor:
        """Grad-CAM heatmap (H, W) in [0, 1] for class ``cls`` (default: the predicted one)."""
        pixels = self.image(image)  # a file is read once, for both uses below
        return inspect.gradcam(self.network, self.input(pixels), self.class_index(cls, pixels))

    def explain_at(self, image: str | Path | torch.Tensor, layer: int, y: int, x: int,
                   filter_index: int = 0) -> inspect.Arithmetic:
        """The dot product behind one conv output value; see `convnet.inspect.explain_at`."""
        return inspect.explain_at(self.network, self.input(image), layer, y, x, filter_index)

    def predict_files(self, paths: list[str | Path]) -> list[Prediction]:
        """One `Prediction` per file; unreadable files get an error instead of probabilities."""
        results: list[Prediction] = []
        loaded: list[tuple[int, torch.Tensor]] = []
        for path in paths:
            try:
                loaded.append((len(results), self.image(path)))  # (C, H, W) uint8
                results.append(Prediction(str(path)))
            except ConvnetError as error:
                reason = str(error).removeprefix(f"{path}: ")  # the row already names the file
                results.append(Prediction(str(path), error=reason))
        if loaded:
            probabilities = self.predict(torch.stack([image for _, image in loaded]))
            for (index, _), row in zip(loaded, probabilities):
                order = row.argsort(descending=True).tolist()
                results[index].probabilities = {self.classes[i]: float(row[i]) for i in order}
        return results

    def evaluate_data(self, data: str | Path | None = None) -> Evaluation:
        """Score the run on a dataset's test split (default: the data it was trained on).

        Raises:
            ConvnetError: if the data has no test split or other classes than the run.
        """
        dataset = datasets.load(data or self.meta["config"]["data"], preprocess=self.preprocess)
        if dataset.test is None:
            raise ConvnetError(f"--data {dataset.name!r} has no test split to evaluate on. "
                               "Give a dataset with test files (t10k-* for IDX folders).")
        if dataset.classes != self.classes:
            raise ConvnetError(f"The data's classes {dataset.classes} differ from the run's "
                               f"{self.classes}. Evaluate on data with the same classes.")
        return self.evaluate(dataset.test)

    def evaluate(self, split: Split) -> Evaluation:
        """Accuracy, per-class precision/recall/F1 and the confusion matrix on a split."""
        expected = self.network.input_shape
        got = tuple(split.images.shape[1:])
        if got != (expected[2], expected[0], expected[1]):
            raise ConvnetError(f"The data's images are {got[1]}×{got[2]}×{got[0]} but the run "
                               f"was trained on {expected[0]}×{expected[1]}×{expected[2]}. "
                               f"Evaluate on data of the same shape.")
        return evaluate_split(self.network, split, self.mean, self.std, self.classes,
                              flip_tta=self.flip_tta)


def _read_meta(folder: Path) -> dict[str, Any]:
    if not folder.is_dir():
        raise RunError(f"Run folder {str(folder)!r} does not exist. Give the folder that "
                       "`convnet train` wrote (it holds model.json and model.safetensors).")
    missing = [name for name in (META, WEIGHTS) if not (folder / name).is_file()]
    if missing:
        raise RunError(f"Run folder {str(folder)!r} is missing {' and '.join(missing)}; it is "
                       "not a complete run. Train again or point at another run folder.")
    try:
        meta = json.loads((folder / META).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunError(f"{folder / META} is not valid JSON ({error}); the run is damaged.") \
            from None
    if not isinstance(meta, dict) or meta.get("format") != RUN_FORMAT:
        version = meta.get("convnet_version", "unknown") if isinstance(meta, dict) else "?"
        raise RunError(f"{folder} was written by convnet {version} in run format "
                       f"{meta.get('format') if isinstance(meta, dict) else '?'}; this convnet "
                       f"{__version__} reads format {RUN_FORMAT}. Retrain with this version.")
    return meta


def load(path: str | Path) -> Run:
    """Load a run folder written by `convnet.train`. No pickle is involved.

    Raises:
        RunError: if files are missing, damaged, or from an incompatible version.
    """
    folder = Path(path)
    meta = _read_meta(folder)
    data = (folder / WEIGHTS).read_bytes()
    expected = meta.get("weights", {}).get("sha256")
    if expected and hashlib.sha256(data).hexdigest() != expected:
        raise RunError(f"{folder / WEIGHTS} does not match the SHA-256 in model.json: the file "
                       "is damaged or was replaced. Restore it or retrain.")
    try:
        state = load_safetensors(data)
        network = build(meta["spec"], tuple(meta["input_shape"]), len(meta["classes"]))
    except (SafetensorError, KeyError, TypeError) as error:
        raise RunError(f"{folder} cannot be loaded ({type(error).__name__}: {error}).") from None
    try:
        result = network.load_state_dict(state, strict=False)
    except RuntimeError as error:  # same names, other shapes
        raise RunError(f"{folder / WEIGHTS} does not fit the spec in model.json: "
                       f"{str(error).splitlines()[-1].strip()}") from None
    if result.missing_keys or result.unexpected_keys:
        raise RunError(f"{folder / WEIGHTS} does not fit the spec in model.json: missing "
                       f"{result.missing_keys}, unexpected {result.unexpected_keys}.")
    return Run(network, meta, folder)


def write_meta(folder: Path, meta: dict[str, Any]) -> None:
    write_json(folder / META, meta)
