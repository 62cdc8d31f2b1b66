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


def _accuracy(session, pixels: np.ndarray, labels: np.ndarray) -> float:
    logits = np.concatenate([session.run(["logits"], {"pixels": pixels[i:i + 256]})[0]
                             for i in range(0, len(pixels), 256)])
    return float((logits.argmax(1) == labels).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
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
