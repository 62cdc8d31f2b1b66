"""`convnet export`: a run as an ONNX model that takes raw pixels, kept only once it is
proven to give the run's own probabilities.

The file is written under a temporary name beside its target, checked with
``onnx.checker``, given the run's metadata, then run with onnxruntime on real images of the
run's data (up to `PARITY_IMAGES` of its test split, else of its held-out validation
images), a batch of one and an odd batch. Only when every probability is within
`TOLERANCE` of PyTorch's and every top-1 class agrees is it renamed into place.

Why 1e-5: both sides compute in float32, and the differences measured on every preset
were below 3e-7 (bench/RESULTS.md); 1e-5 leaves room for other CPUs' kernels while still
failing on any real difference (a wrong normalisation or layer shifts probabilities by
1e-2 or more).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from convnet import extras
from convnet._version import __version__
from convnet.errors import ConvnetError
from convnet.export.graph import PixelModel
from convnet.export.runtime import OnnxPredictor, session
from convnet.runs.run import Run, load

TOLERANCE = 1e-5
# the scores weigh the features by the inverse of their covariance, whose entries run to
# thousands, so the two backends' float32 differences in the features (1e-6) grow: 1.1e-4
# (relative) was measured on an EfficientNet-Lite0 fine-tune; a verdict moves only for an
# image that close to the threshold
SCORE_TOLERANCE = 1e-3
PARITY_IMAGES = 256
ODD_BATCH = 7
DEFAULT_OPSET = 18


@dataclass(frozen=True)
class Parity:
    images: int  # images compared
    max_diff: float  # largest |p_torch - p_onnx| over every image and class
    agree: int  # images whose top-1 class is the same
    source: str  # which images
    # the largest |s_torch - s_onnx| / max(1, |s_torch|) of the "unknown" scores
    score_diff: float = 0.0

    @property
    def ok(self) -> bool:
        return self.max_diff <= TOLERANCE and self.agree == self.images and \
            self.score_diff <= SCORE_TOLERANCE


@dataclass(frozen=True)
class Exported:
    path: Path
    bytes: int
    parity: Parity


def _metadata(run: Run) -> dict[str, str]:
    record = run.record
    values = {"classes": run.classes, "input_shape": list(run.input_shape),
              "preprocess": record.preprocess.to_dict(), "spec": record.spec,
              "normalization": record.normalization.to_dict(), "tta": record.tta,
              "weights_sha256": record.weights_sha256, "convnet_version": __version__,
              "calibration": record.calibration.to_dict(),
              "input": "uint8 pixels (N, H, W, C), decoded and resized as 'preprocess' says",
              "outputs": "probabilities (N, classes), logits (N, classes), both calibrated "
                         "(the logits divided by the calibration's temperature)"}
    if run.predictor.detector is not None:
        values["unknown"] = run.predictor.detector.to_metadata()
        values["outputs"] += ("; unknown_score (N,), higher for less like the training "
                              "images, and unknown (N,) bool, the score above 'unknown.cut' "
                              "(a share 'unknown.kept' of the validation images stays known; "
                              "for another share, read the threshold off 'unknown.known')")
    return {key: json.dumps(value) for key, value in values.items()}


@contextlib.contextmanager
def _quiet():
    """The exporter's progress lines and warnings are not the user's business."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


OUTPUTS = ["probabilities", "logits"]
DETECTOR_OUTPUTS = ["unknown_score", "unknown"]


def write_graph(model: PixelModel, input_shape: tuple[int, int, int], path: Path, opset: int,
                batch: int | None) -> None:
    """Export ``model`` for uint8 (N, H, W, C) input of ``input_shape`` (H, W, C)."""
    # the exporter needs them: say so before it fails deep inside
    extras.require("onnx", "ONNX export needs onnx and onnxscript", ("onnx", "onnxscript"))
    height, width, channels = input_shape
    example = torch.zeros(batch or 2, height, width, channels, dtype=torch.uint8)
    shapes = None if batch else {"pixels": {0: torch.export.Dim("batch", min=1)}}
    try:
        with _quiet():
            torch.onnx.export(model, (example,), str(path), input_names=["pixels"],
                              output_names=OUTPUTS + (DETECTOR_OUTPUTS if model.detects else []),
                              opset_version=opset,
                              dynamic_shapes=shapes, dynamo=True, verbose=False)
    except Exception as error:  # the exporter raises many kinds; one line for all of them
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else \
            type(error).__name__
        raise ConvnetError(f"opset={opset}: the installed torch {torch.__version__} exporter "
                           f"cannot write this model ({reason}). Use opset={DEFAULT_OPSET} "
                           "or later.") from None


def _finish(path: Path, run: Run, opset: int) -> None:
    """Check the graph and its opset, and store the run's metadata in it."""
    import onnx

    model = onnx.load(str(path))
    written = max((entry.version for entry in model.opset_import
                   if entry.domain in ("", "ai.onnx")), default=None)
    if written != opset:
        raise ConvnetError(f"opset={opset}: the installed torch {torch.__version__} exporter "
                           f"cannot write it (it could only write opset {written}). Use "
                           f"opset={DEFAULT_OPSET} or later.")
    onnx.checker.check_model(model)
    Path(f"{path}.data").unlink(missing_ok=True)  # weights the exporter put beside it: inlined
    for key, value in _metadata(run).items():
        model.metadata_props.add(key=f"{key}", value=value)
    onnx.save(model, str(path))


def _parity_batches(run: Run, data: str | None, batch: int | None
                    ) -> tuple[list[torch.Tensor], str]:
    """uint8 (N, C, H, W) batches of real images: the split, then 1 and an odd batch.

    A built-in run has no images of its own: without ``data`` it is checked on smooth
    colour ramps with noise (seeded), which such a network answers with confidence.
    """
    if data is None and run.builtin:
        images, what = _ramps(run.network.chw), "seeded colour ramps (no data given)"
    else:
        split, what = run.labelled(data)
        images = split.images[:PARITY_IMAGES]
    if batch:
        return [images[i : i + batch] for i in range(0, len(images), batch)], what
    return [images, images[:1], images[:ODD_BATCH]], what


def _ramps(chw: tuple[int, int, int], count: int = 16) -> torch.Tensor:
    channels, height, width = chw
    generator = torch.Generator().manual_seed(0)
    rows = torch.linspace(0, 1, height)[:, None]  # (H, 1)
    cols = torch.linspace(0, 1, width)[None, :]  # (1, W)
    images = []
    for _ in range(count):
        mix = torch.rand(channels, 3, generator=generator)  # (C, 3) weights of 3 ramps
        ramps = torch.stack([rows.expand(height, width), cols.expand(height, width),
                             rows * cols])  # (3, H, W)
        noise = torch.rand(channels, height, width, generator=generator) * 0.2
        picture = torch.einsum("ck,khw->chw", mix, ramps) / mix.sum(1)[:, None, None]
        images.append(((picture * 0.8 + noise) * 255).clamp(0, 255).to(torch.uint8))
    return torch.stack(images)  # (N, C, H, W)


def check_parity(run: Run, path: Path, data: str | None = None,
                 batch: int | None = None) -> Parity:
    """Probabilities (and "unknown" scores) of PyTorch and of the ONNX file on the same
    real images."""
    batches, what = _parity_batches(run, data, batch)
    onnx_side = OnnxPredictor(path, run.classes)
    diffs, score_diffs, agree, count = [0.0], [0.0], 0, 0
    for images in batches:
        if not len(images):
            continue
        expected, expected_scores = run.predictor.scored(images)  # (n, classes), (n,)
        found, found_scores = onnx_side.scored(images)
        diffs.append(float((expected - found).abs().max()))
        agree += int((expected.argmax(1) == found.argmax(1)).sum())
        count += len(images)
        if expected_scores is not None:
            gap = (expected_scores - found_scores).abs() / expected_scores.abs().clamp(min=1)
            score_diffs.append(float(gap.max()))
    return Parity(count, max(diffs), agree, what, max(score_diffs))


def _target(run: Run, out: str | Path | None, force: bool) -> Path:
    target = Path(out) if out is not None else run.path / "model.onnx"
    if target.is_dir():
        raise ConvnetError(f"out={str(target)!r} is a folder; give a file name such as "
                           f"{str(target / 'model.onnx')!r}.")
    if target.exists() and not force:
        raise ConvnetError(f"{target} already exists; nothing was overwritten. Add force=True "
                           "to replace it, or choose another out.")
    if not target.parent.is_dir() or not os.access(target.parent, os.W_OK):
        raise ConvnetError(f"out={str(target)!r}: cannot write in {str(target.parent)!r} (not "
                           "a writable folder). Choose a writable out.")
    return target


def export_onnx(run_path: str | Path, out: str | Path | None = None, *,
                opset: int = DEFAULT_OPSET, batch: int | None = None, force: bool = False,
                data: str | None = None) -> Exported:
    """Export a finished run as ONNX (default ``RUN/model.onnx``), proven equal to PyTorch.

    Args:
        batch: a fixed batch size; None: any batch size.
        data: images for the parity check; default the run's own test (or validation) split.

    Raises:
        ConvnetError: for a missing or unfinished run, an existing ``out`` without ``force``,
            an unwritable folder, an opset the exporter cannot do, missing extras, or a
            parity failure (then no file is kept).
    """
    run = load(run_path)
    target = _target(run, out, force)
    if batch is not None and (not isinstance(batch, int) or batch < 1):
        raise ConvnetError(f"batch must be a positive integer or None (any size). Received: "
                           f"batch={batch!r}.")
    model = PixelModel(run.network.eval(), run.record.normalization,
                       run.record.tta == "flip", run.record.calibration.temperature,
                       run.predictor.detector).eval()
    handle, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                    suffix=".onnx")
    os.close(handle)
    try:
        write_graph(model, run.input_shape, Path(temp), opset, batch)
        _finish(Path(temp), run, opset)
        parity = check_parity(run, Path(temp), data, batch)
        if not parity.ok:
            raise ConvnetError(
                f"The ONNX model differs from the run: max |Δp| {parity.max_diff:.2e} (limit "
                f"{TOLERANCE:.0e}), unknown scores {parity.score_diff:.1e} apart (limit "
                f"{SCORE_TOLERANCE:.0e}), top-1 agreement {parity.agree}/{parity.images} on "
                f"{parity.source}; nothing was kept. Report this with the run's spec.")
        os.replace(temp, target)
    finally:
        Path(temp).unlink(missing_ok=True)
        Path(f"{temp}.data").unlink(missing_ok=True)
    return Exported(target, target.stat().st_size, parity)


__all__ = ["DEFAULT_OPSET", "Exported", "Parity", "TOLERANCE", "check_parity", "export_onnx",
           "session"]
