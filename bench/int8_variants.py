"""What else int8 could quantize in a run's ONNX file, and what each choice does to speed
and accuracy: the feature maps with the first convolution in float (what `export --int8`
keeps for digits), the dense layers too, every one of them, each in onnxruntime's QDQ and
QOperator formats, against the float file in turn on the same machine.

    python bench/int8_variants.py RUN          # e.g. the no-option digits run

Timed as `convnet.export.int8` times: batches of 32 of the run's test images, a pause and
an untimed pass before each turn, the median of 7 turns of 3 passes; accuracy on all the
run's test images, by the ``logits`` output. A negative result is kept here so that it can
be rerun: on digits no variant reached the issue's 2x (bench/HISTORY.md, "int8: where the
time went").

`--core` quantizes the network alone instead: no calibration, softmax or "unknown"
detector around it, the pixels' scaling and normalization folded into the first
convolution's weights (exact where it has no padding), so that the int8 graph reads the
uint8 pixels through one QuantizeLinear. It asks whether int8 arithmetic speeds up this
network at all, before the float work around it.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchdata import cpu_flags, machine

MAPS = ["Conv", "Clip", "Relu", "Add", "MaxPool", "AveragePool"]
TURNS, PASSES, BATCH = 7, 3, 32


def _variants(prepared: Path) -> dict[str, tuple[list[str], list[str]]]:
    """{name: (nodes quantized, operator types)} for the prepared float file."""
    import onnx

    from convnet.export.int8 import _feature_map_nodes

    nodes, image = _feature_map_nodes(prepared)
    # the dense layers (the "unknown" score's MatMul stays in float)
    dense = [node.name for node in onnx.load(str(prepared)).graph.node
             if node.op_type == "Gemm"]
    later = [name for name in nodes if name not in image]
    return {"maps, first conv float": (later, MAPS),
            "maps and dense, first conv float": (later + dense, MAPS + ["Gemm"]),
            "every map and dense layer": (nodes + dense, MAPS + ["Gemm"])}


def _seconds(sessions: dict[str, object], pixels: np.ndarray) -> dict[str, float]:
    """Median seconds of a batch for each session, timed in turn."""
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(TURNS):
        for name, session in sessions.items():
            time.sleep(0.1)
            session.run(["logits"], {"pixels": pixels})
            started = time.perf_counter()
            for _ in range(PASSES):
                session.run(["logits"], {"pixels": pixels})
            times[name].append((time.perf_counter() - started) / PASSES)
    return {name: statistics.median(found) for name, found in times.items()}


def _core_files(run, work: Path, images: np.ndarray) -> dict[str, Path]:
    """{name: file}: the network alone in float, and quantized in both formats, with the
    convolutions and pools, then the dense layers too."""
    import copy

    import torch
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )
    from torch import nn

    from convnet.runs.predictor import folded

    network = copy.deepcopy(folded(run.network)).eval()
    first = next(module for module in network.modules() if isinstance(module, nn.Conv2d))
    if any(first.padding):
        raise SystemExit("--core folds the normalization into a first convolution "
                         f"without padding; this one pads {first.padding}")
    norm = run.record.normalization
    mean, std = norm.mean.reshape(1, -1, 1, 1), norm.std.reshape(1, -1, 1, 1)
    weight = first.weight.data  # (O, C, k, k)
    first.bias.data = first.bias.data - (weight * mean / std).sum((1, 2, 3))
    first.weight.data = weight / (255 * std)

    class Core(nn.Module):
        def __init__(self):
            super().__init__()
            self.network = network

        def forward(self, pixels):  # (N, H, W, C) uint8 -> (N, classes)
            return self.network(pixels.permute(0, 3, 1, 2).float())

    floating = work / "core.onnx"
    torch.onnx.export(Core(), (torch.from_numpy(images[:2]),), str(floating),
                      input_names=["pixels"], output_names=["logits"],
                      dynamic_axes={"pixels": {0: "n"}}, opset_version=18, dynamo=False)
    prepared = work / "core-prepared.onnx"
    quant_pre_process(str(floating), str(prepared), skip_symbolic_shape=True)
    files = {"float": floating}
    for form in (QuantFormat.QDQ, QuantFormat.QOperator):
        for ops in (["Conv", "Relu", "MaxPool"], ["Conv", "Relu", "MaxPool", "Gemm"]):
            name = f"{form.name}, {'maps and dense' if 'Gemm' in ops else 'maps'}"
            out = work / f"core-{form.name}-{len(ops)}.onnx"
            reader = iter([{"pixels": images[i:i + BATCH]}
                           for i in range(0, len(images), BATCH)])
            quantize_static(str(prepared), str(out), _Reader(reader), quant_format=form,
                            op_types_to_quantize=ops, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax)
            files[name] = out
    return files


class _Reader:
    """onnxruntime's calibration reader over prepared feeds."""

    def __init__(self, feeds):
        self.feeds = feeds

    def get_next(self):
        return next(self.feeds, None)

    def rewind(self):
        pass


def _core(run, work: Path, pixels: np.ndarray, labels: np.ndarray, train: np.ndarray) -> None:
    import onnxruntime as ort

    files = _core_files(run, work, train)
    sessions = {name: ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
                for name, path in files.items()}
    print("| the network alone | batch | ms | speed-up | accuracy |\n|---|---|---|---|---|")
    for batch in (BATCH, 256):
        seconds = _seconds(sessions, pixels[:batch])
        for name, session in sessions.items():
            print(f"| {name} | {batch} | {seconds[name] * 1e3:.3f} | "
                  f"{seconds['float'] / seconds[name]:.2f}x | "
                  f"{_accuracy(session, pixels, labels):.2%} |", flush=True)


def _accuracy(session, pixels: np.ndarray, labels: np.ndarray) -> float:
    logits = np.concatenate([session.run(["logits"], {"pixels": pixels[i:i + 256]})[0]
                             for i in range(0, len(pixels), 256)])
    return float((logits.argmax(1) == labels).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--core", action="store_true",
                        help="the network alone, its normalization folded in")
    args = parser.parse_args()
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    from convnet.export.int8 import _calibration_images, _Images, _own_splits
    from convnet.export.onnx_model import export_onnx
    from convnet.runs.run import load

    logging.getLogger().setLevel(logging.ERROR)
    print(f"machine: {machine()}; cpu flags: {cpu_flags()}", flush=True)
    run, work = load(args.run), Path(tempfile.mkdtemp(prefix="convnet-int8-variants-"))
    train, _ = _own_splits(run)
    test = run.own_data().test
    pixels = test.images.permute(0, 2, 3, 1).contiguous().numpy()  # (N, H, W, C) uint8
    if args.core:
        chosen = _calibration_images(run, train, 256).permute(0, 2, 3, 1).contiguous()
        return _core(run, work, pixels, test.labels.numpy(), chosen.numpy())
    floating = export_onnx(run.path, work / "model.onnx").path
    prepared = work / "prepared.onnx"
    quant_pre_process(str(floating), str(prepared), skip_symbolic_shape=True)
    images = _calibration_images(run, train, 256)
    print("| format | quantized | float ms | int8 ms | speed-up | accuracy float | int8 |\n"
          "|---|---|---|---|---|---|---|")
    for form in (QuantFormat.QDQ, QuantFormat.QOperator):
        for index, (name, (nodes, ops)) in enumerate(_variants(prepared).items()):
            out = work / f"{form.name}-{index}.onnx"
            quantize_static(str(prepared), str(out), _Images(images), quant_format=form,
                            op_types_to_quantize=ops, nodes_to_quantize=nodes,
                            per_channel=True, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax)
            sessions = {path: ort.InferenceSession(str(path),
                                                   providers=["CPUExecutionProvider"])
                        for path in (floating, out)}
            seconds = _seconds(sessions, pixels[:BATCH])
            accuracy = {path: _accuracy(session, pixels, test.labels.numpy())
                        for path, session in sessions.items()}
            print(f"| {form.name} | {name} | {seconds[floating] * 1e3:.3f} | "
                  f"{seconds[out] * 1e3:.3f} | {seconds[floating] / seconds[out]:.2f}x | "
                  f"{accuracy[floating]:.2%} | {accuracy[out]:.2%} |", flush=True)


if __name__ == "__main__":
    main()
