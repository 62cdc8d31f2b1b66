"""`convnet export RUN --int8`: the run's ONNX file with its feature-map layers in int8, for
shipping to CPUs, kept only when it answers nearly as well.

Static quantization by onnxruntime's tools: the float file is exported (and proven equal
to PyTorch) first, then every convolution, activation and residual sum on feature maps
(the 4-D tensors) is quantized, weights per channel, with ranges measured on
`CALIBRATION_IMAGES` of the run's own training images. What follows the pooling (the dense
layers, the softmax, the "unknown" score's distances) stays in float: it is a sliver of the
time, and int8 would cost it precision. Quantizing the convolutions alone left a float
activation between each pair of them, and onnxruntime then converts at every layer: on a
car/truck EfficientNet-Lite0 fine-tune it was 1.06× as fast and 6.5 points less accurate,
where quantizing the whole chain is 2.0× as fast and 0.7 points less accurate
(bench/RESULTS.md, "serving int8-run").

The first convolution, which reads the image, is a thin product (a sum over 9 to 75
values): in int8, onnxruntime runs the digits network's 5× slower than in float, and
EfficientNet's stem faster. So the file is quantized twice, with it in int8 and in float,
and the faster is kept, timed on this machine beside the float file.

The int8 file is then measured against the float one on the run's test images (accuracy,
and the time of a batch), and both figures go into its metadata. A drop of more than
`MOST_DROP` in accuracy is refused (nothing kept) unless asked for. The "unknown" verdict's
threshold is set again from the int8 file's own scores on the validation images, so that
the share kept is what it was.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from convnet import extras
from convnet.data.dataset import Split
from convnet.errors import ConvnetError
from convnet.export.onnx_model import _quiet, _target, export_onnx
from convnet.export.runtime import OnnxPredictor
from convnet.runs.run import Run, load
from convnet.runs.unknown import Detector

CALIBRATION_IMAGES = 256  # training images the activation ranges are measured on
FEATURE_OPS = ["Conv", "Clip", "Relu", "Add", "MaxPool", "AveragePool"]  # quantized on maps
MOST_DROP = 0.01  # the accuracy an int8 file may lose on the test images
TIMED_BATCH = 32  # images per timed forward pass
TIMED_RUNS = 7  # turns per file, in turn with the others (the median is kept)
TIMED_PASSES = 3  # passes timed in a turn
SETTLE_SECONDS = 0.1  # before a turn: onnxruntime's threads spin a while after a pass,
# and on 2 cores they slow the next file's (by 10-25% after 0.01 s)
INT8_FILE = "model.int8.onnx"


@dataclass(frozen=True)
class Int8Report:
    """How the int8 file compares with the float one, on the same images."""

    test_images: int
    source: str  # which images
    accuracy_fp32: float
    accuracy_int8: float
    agree: float  # the share of images whose top class is the same
    seconds_fp32: float  # the median time of a batch of TIMED_BATCH
    seconds_int8: float
    calibration_images: int
    bytes_fp32: int
    bytes_int8: int
    float_convs: int = 0  # 1: the convolution reading the image left in float (faster here)

    @property
    def drop(self) -> float:
        return self.accuracy_fp32 - self.accuracy_int8

    @property
    def speedup(self) -> float:
        return self.seconds_fp32 / max(self.seconds_int8, 1e-9)

    def to_dict(self) -> dict:
        return {**asdict(self), "drop": self.drop, "speedup": self.speedup}


@dataclass(frozen=True)
class Quantized:
    path: Path
    report: Int8Report


class _Images:
    """onnxruntime's calibration reader: the images as ``pixels`` batches (N, H, W, C)."""

    def __init__(self, images: torch.Tensor, batch: int = 32):
        pixels = images.permute(0, 2, 3, 1).contiguous().numpy()  # (N, H, W, C) uint8
        self.batches = iter([{"pixels": pixels[i : i + batch]}
                             for i in range(0, len(pixels), batch)])

    def get_next(self) -> dict | None:
        return next(self.batches, None)

    def rewind(self) -> None:  # onnxruntime's reader interface; one pass is enough here
        pass


def _own_splits(run: Run) -> tuple[Split, Split | None]:
    """The run's training images and its validation images (None without), drawn as
    training drew them, the data read once."""
    dataset = run.own_data()
    if run.record.validation is None:
        return dataset.train, None
    return run.record.validation.draw(dataset)


def _calibration_images(run: Run, train: Split, count: int) -> torch.Tensor:
    """uint8 (n, C, H, W): ``count`` of the training images, drawn with the run's seed."""
    generator = torch.Generator().manual_seed(run.record.config.seed)
    chosen = torch.randperm(len(train), generator=generator)[:count]
    return train.images[chosen]


def quantize_int8(run_path: str | Path, out: str | Path | None = None, *, force: bool = False,
                  accept_drop: bool = False,
                  calibration_images: int = CALIBRATION_IMAGES) -> Quantized:
    """Write the run's int8 ONNX file (default ``RUN/model.int8.onnx``), measured against
    the float one on the run's test images.

    Raises:
        ConvnetError: for a built-in run (no training images), missing extras, an
            existing ``out`` without ``force``, or an accuracy drop over `MOST_DROP`
            without ``accept_drop`` (then no file is kept).
    """
    extras.require("onnx", "int8 export needs onnx and onnxruntime",
                   ("onnx", "onnxruntime", "onnxscript"))
    run = load(run_path)
    if run.builtin:
        raise ConvnetError(f"{run.path.name} is a built-in run without training images to "
                           "measure int8 ranges on. Fine-tune it on your images first "
                           "(convnet train --init imagenet), then export that run.")
    target = _target(run, out if out is not None else run.path / INT8_FILE, force)
    train, val = _own_splits(run)
    work = Path(tempfile.mkdtemp(prefix=".int8-", dir=target.parent))
    try:
        floating = export_onnx(run.path, work / "model.onnx").path
        candidates = _quantized(floating, _calibration_images(run, train,
                                                              calibration_images))
        quantized, report = _measure(run, floating, candidates, calibration_images)
        if report.drop > MOST_DROP and not accept_drop:
            raise ConvnetError(
                f"int8 loses {report.drop:.1%} accuracy on {report.test_images} test images "
                f"({report.accuracy_fp32:.2%} -> {report.accuracy_int8:.2%}), more than "
                f"{MOST_DROP:.0%}; nothing was kept. Ship the float file (convnet export), "
                "or keep this one anyway with --accept-drop.")
        _finish(run, quantized, report, val)
        os.replace(quantized, target)
    finally:
        for leftover in sorted(work.glob("*"), reverse=True):
            leftover.unlink(missing_ok=True)
        work.rmdir()
    return Quantized(target, report)


def _feature_map_nodes(prepared: Path) -> tuple[list[str], list[str]]:
    """The nodes of `FEATURE_OPS` whose output is a 4-D feature map (N, C, H, W), from the
    shapes the pre-processing inferred, and the first convolution, which reads the image
    (none where it is the only one)."""
    import onnx

    model = onnx.load(str(prepared))
    ranks = {value.name: len(value.type.tensor_type.shape.dim)
             for value in [*model.graph.value_info, *model.graph.output]}
    maps = [node for node in model.graph.node
            if node.op_type in FEATURE_OPS and ranks.get(node.output[0]) == 4]
    convs = [node.name for node in maps if node.op_type == "Conv"]  # in the graph's order
    # with one convolution only, leaving it in float leaves no int8 worth the name
    return [node.name for node in maps], convs[:1] if len(convs) > 1 else []


def _quantized(floating: Path, images: torch.Tensor) -> dict[int, Path]:
    """``floating`` quantized beside it: {convolutions left in float: file}, with the one
    that reads the image in int8 (0) and, where others follow it, in float (1)."""
    import logging

    from onnxruntime.quantization import quant_pre_process

    prepared = floating.with_suffix(".prepared.onnx")
    root = logging.getLogger()
    level, root.level = root.level, logging.ERROR  # its advice goes to the root logger
    try:
        with _quiet():
            # fused ops and shapes first (onnx's own shape inference: the symbolic one
            # stops on the graph's dynamic batch)
            quant_pre_process(str(floating), str(prepared), skip_symbolic_shape=True)
        nodes, image = _feature_map_nodes(prepared)
        files = {0: floating.with_suffix(".int8.onnx")}
        _quantize(prepared, files[0], images, nodes)
        if image:
            files[len(image)] = floating.with_suffix(".int8-image-float.onnx")
            _quantize(prepared, files[len(image)], images,
                      [name for name in nodes if name not in image])
    finally:
        root.setLevel(level)
    for path in files.values():
        _copy_metadata(floating, path)
    return files


def _quantize(prepared: Path, quantized: Path, images: torch.Tensor,
              nodes: list[str]) -> None:
    """Quantize ``prepared``'s ``nodes`` into ``quantized``."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    with _quiet():
        quantize_static(str(prepared), str(quantized), _Images(images),
                        quant_format=QuantFormat.QDQ, op_types_to_quantize=FEATURE_OPS,
                        nodes_to_quantize=nodes, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)


def _copy_metadata(floating: Path, quantized: Path) -> None:
    """``quantized`` keeps ``floating``'s metadata (the quantizer drops it)."""
    import onnx

    model = onnx.load(str(quantized))
    del model.metadata_props[:]
    for prop in onnx.load(str(floating)).metadata_props:
        model.metadata_props.add(key=prop.key, value=prop.value)
    onnx.save(model, str(quantized))


def _median_seconds(sides: dict[str | int, OnnxPredictor], images: torch.Tensor
                    ) -> dict[str | int, float]:
    """The median time of a pass of ``images`` through each side's file alone (the pixels
    already in its layout). The sides take turns, so that a machine slowing down or
    speeding up weighs on all alike. Each turn starts after a pause (the last side's
    threads stop spinning) with a pass not timed, which wakes this file's, then times
    `TIMED_PASSES`."""
    pixels = {"pixels": images.permute(0, 2, 3, 1).contiguous().numpy()}  # (N, H, W, C)
    times: dict[str | int, list[float]] = {name: [] for name in sides}
    for _ in range(TIMED_RUNS):
        for name, side in sides.items():
            time.sleep(SETTLE_SECONDS)
            side.session.run(["probabilities"], pixels)
            started = time.perf_counter()
            for _ in range(TIMED_PASSES):
                side.session.run(["probabilities"], pixels)
            times[name].append((time.perf_counter() - started) / TIMED_PASSES)
    return {name: statistics.median(found) for name, found in times.items()}


def _measure(run: Run, floating: Path, candidates: dict[int, Path], calibrated: int
             ) -> tuple[Path, Int8Report]:
    """The fastest of the int8 ``candidates`` ({convolutions in float: file}), and how it
    compares with the float file on the run's test images."""
    split, what = run.labelled()
    sides = {"fp32": OnnxPredictor(floating, run.classes)}
    sides.update({kept: OnnxPredictor(path, run.classes) for kept, path in candidates.items()})
    seconds = _median_seconds(sides, split.images[:TIMED_BATCH])
    kept = min(candidates, key=lambda name: seconds[name])
    found = {name: sides[name].probabilities(split.images).argmax(1) for name in ("fp32", kept)}
    labels = split.labels.cpu()
    accuracy = {name: float((top == labels).double().mean()) if len(labels) else 0.0
                for name, top in found.items()}
    agree = float((found["fp32"] == found[kept]).double().mean()) if len(labels) else 1.0
    return candidates[kept], Int8Report(
        len(labels), what, accuracy["fp32"], accuracy[kept], agree, seconds["fp32"],
        seconds[kept], calibrated, floating.stat().st_size, candidates[kept].stat().st_size,
        kept)


def _finish(run: Run, quantized: Path, report: Int8Report, val: Split | None) -> None:
    """The report in the int8 file's metadata, and its "unknown" threshold set again from
    its own scores on the validation images ``val``."""
    import onnx

    model = onnx.load(str(quantized))
    values = {prop.key: prop.value for prop in model.metadata_props}
    values["int8"] = json.dumps(report.to_dict())
    if run.predictor.detector is not None and val is not None:
        scores = OnnxPredictor(quantized, run.classes).scored(val.images)[1]
        found = Detector(None, scores.sort().values).to_metadata()
        values["unknown"] = json.dumps(found)
        _set_cut(model, found["cut"])
    del model.metadata_props[:]
    for key, value in values.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(quantized))


def _set_cut(model, cut: float) -> None:
    """The graph's "unknown" output compares the score with a constant: set it to ``cut``."""
    import onnx
    from onnx import numpy_helper

    verdict = next(node for node in model.graph.node
                   if node.op_type == "Greater" and "unknown" in node.output)
    constant = verdict.input[1]
    for initializer in model.graph.initializer:
        if initializer.name == constant:
            value = numpy_helper.to_array(initializer)
            initializer.CopyFrom(numpy_helper.from_array(np.full_like(value, cut), constant))
            return
    for node in model.graph.node:
        if node.op_type == "Constant" and constant in node.output:
            value = numpy_helper.to_array(node.attribute[0].t)
            node.attribute[0].t.CopyFrom(numpy_helper.from_array(np.full_like(value, cut),
                                                                 constant))
            return
    raise ConvnetError("The int8 file's unknown threshold was not found; export without "
                       f"--int8, or report this with the run's spec (onnx {onnx.__version__}).")


__all__ = ["INT8_FILE", "Int8Report", "MOST_DROP", "Quantized", "quantize_int8"]
