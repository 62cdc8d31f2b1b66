"""Running an exported model with onnxruntime, behind the same `Predictor` interface the
command line uses, so `convnet predict --backend onnx` answers from the file itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from convnet import extras
from convnet.allocator import pass_size
from convnet.errors import ConvnetError
from convnet.runs.predictor import Predictor
from convnet.runs.unknown import Detector


def onnxruntime():
    """The onnxruntime module, or a one-line error naming the extra to install."""
    extras.require("onnx", "ONNX needs onnxruntime", ("onnxruntime",))
    import onnxruntime as runtime

    return runtime


def session(path: Path):
    runtime = onnxruntime()
    options = runtime.SessionOptions()
    options.log_severity_level = 3  # errors only: no warnings on stderr
    try:
        return runtime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types
        raise ConvnetError(f"{path} cannot be loaded by onnxruntime ({error}).") from None


def _metadata_of(loaded) -> dict[str, Any]:
    props = loaded.get_modelmeta().custom_metadata_map
    return {key: json.loads(value) for key, value in props.items()}


def metadata(path: Path) -> dict[str, Any]:
    """The convnet metadata stored in an exported model (classes, input shape, ...)."""
    return _metadata_of(session(path))


class OnnxPredictor(Predictor):
    """A `Predictor` whose answers come from an exported model file. Only the answering
    path (`probabilities`, `scored`, `rows`, `predict`) is used; the normalisation, TTA,
    calibration, softmax and "unknown" score are inside the file, so the base class's
    network state is not set. The verdict's thresholds come from the file's metadata."""

    def __init__(self, path: Path, classes: list[str], batch_size: int = 256):
        self.session = session(path)  # loaded once: the metadata is read from it too
        found = _metadata_of(self.session)
        if found.get("classes") != list(classes):
            raise ConvnetError(f"{path} was exported for classes {found.get('classes')}, not "
                               f"the run's {classes}. Export the run again.")
        self.path, self.classes, self.batch_size = path, list(classes), batch_size
        # a file exported before detectors has no unknown scores: None, as for such a run
        self.detector = Detector.from_metadata(found["unknown"]) if "unknown" in found \
            else None
        shape = self.session.get_inputs()[0].shape  # [N, H, W, C]
        self.fixed_batch = shape[0] if isinstance(shape[0], int) else None

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """Probabilities (N, classes) for uint8 images (N, C, H, W)."""
        return self._outputs(images, ["probabilities"])[0]

    def scored(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.detector is None:
            return self.probabilities(images), None
        probabilities, scores = self._outputs(images, ["probabilities", "unknown_score"])
        return probabilities, scores

    def _outputs(self, images: torch.Tensor, names: list[str]) -> list[torch.Tensor]:
        """The file's ``names`` outputs for uint8 images (N, C, H, W), in batches."""
        pixels = images.permute(0, 2, 3, 1).contiguous().numpy()  # (N, H, W, C) uint8
        # as many images a pass as torch's predictor takes on a CPU (`pass_size`)
        step = self.fixed_batch or min(self.batch_size, pass_size(images, torch.device("cpu")))
        parts: list[list[np.ndarray]] = []
        for start in range(0, len(pixels), step):
            chunk = pixels[start : start + step]
            if self.fixed_batch and len(chunk) < self.fixed_batch:  # pad a fixed-size batch
                padding = np.zeros((self.fixed_batch - len(chunk), *chunk.shape[1:]), np.uint8)
                found = self.session.run(names, {"pixels": np.concatenate([chunk, padding])})
                parts.append([values[: len(chunk)] for values in found])
            else:
                parts.append(self.session.run(names, {"pixels": chunk}))
        if not parts:
            return [torch.zeros(0, len(self.classes)), torch.zeros(0)][: len(names)]
        return [torch.from_numpy(np.concatenate([part[i] for part in parts]))
                for i in range(len(names))]
