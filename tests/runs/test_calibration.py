"""Calibrated probabilities: the temperature fitted on validation logits is the one that
minimises their log loss (checked against a grid search), the scores match numpy's, the
answers and accuracy never change, and a trained run answers with its temperature in
predict, evaluate and the ONNX file alike; runs written before it answer as they did."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import convnet
from convnet.runs.calibration import (
    BINS,
    Calibration,
    calibrate,
    expected_calibration_error,
    fit_temperature,
    honesty,
)

FORMAT1 = Path(__file__).resolve().parent.parent / "fixtures" / "run-format1"


def _sampled(temperature: float, count: int = 20_000, classes: int = 5, seed: int = 0):
    """Logits, and labels drawn from softmax(logits / temperature): the true temperature."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(count, classes, generator=generator) * 3  # (N, K)
    labels = torch.multinomial((logits / temperature).softmax(1), 1, generator=generator)
    return logits, labels.squeeze(1)


@pytest.mark.parametrize("truth", [0.5, 1.0, 2.5])
def test_the_fitted_temperature_is_the_log_loss_minimum(truth):
    logits, labels = _sampled(truth)
    fitted = fit_temperature(logits, labels)
    def best(grid: torch.Tensor) -> float:
        losses = torch.stack([F.cross_entropy(logits / t, labels) for t in grid])
        return float(grid[losses.argmin()])

    coarse = best(torch.linspace(0.2, 5.0, 97))  # steps of 0.05, then 0.001 around the best
    assert fitted == pytest.approx(best(torch.linspace(coarse - 0.05, coarse + 0.05, 101)),
                                   abs=0.002)
    assert fitted == pytest.approx(truth, rel=0.08)  # and near the truth it was drawn from


def test_scores_match_numpy_and_calibration_changes_no_answer():
    logits, labels = _sampled(2.0, count=3000)
    calibration = calibrate(logits, labels)
    assert calibration.method == "temperature" and calibration.fitted_on == 3000
    assert torch.equal(calibration.scale(logits).argmax(1), logits.argmax(1))
    before, after = honesty(logits, labels), honesty(logits, labels, calibration)
    assert after.nll < before.nll and after.ece < before.ece
    p = (logits / calibration.temperature).softmax(1).numpy()
    y = labels.numpy()
    top, guess = p.max(1), p.argmax(1)
    bins = np.minimum((top * BINS).astype(int), BINS - 1)
    ece = sum(abs(top[bins == b].mean() - (guess[bins == b] == y[bins == b]).mean())
              * (bins == b).mean() for b in range(BINS) if (bins == b).any())
    brier = ((p - np.eye(p.shape[1])[y]) ** 2).sum(1).mean()
    assert after.ece == pytest.approx(ece, abs=1e-4)
    assert after.brier == pytest.approx(brier, abs=1e-5)
    assert after.nll == pytest.approx(-np.log(p[np.arange(len(y)), y]).mean(), abs=1e-5)


@pytest.mark.parametrize("temperature", [0.3, 1.0, 4.0])
def test_the_calibration_error_is_torchmetrics(temperature):
    from torchmetrics.functional.classification import multiclass_calibration_error

    logits, labels = _sampled(2.0, count=5000, classes=7, seed=3)
    probabilities = (logits / temperature).softmax(1)
    probabilities[:50] = F.one_hot(labels[:50], 7).float()  # some exactly sure: top = 1
    expected = multiclass_calibration_error(probabilities, labels, num_classes=7,
                                            n_bins=BINS, norm="l1")
    assert expected_calibration_error(probabilities, labels) == pytest.approx(
        float(expected), abs=1e-6)


def test_too_few_validation_images_fit_nothing():
    logits, labels = _sampled(2.0, count=10)
    found = calibrate(logits, labels)
    assert found.method == "none" and found.temperature == 1.0 and "too few" in found.note
    assert Calibration.from_dict(None) == Calibration()


def test_a_run_answers_with_its_temperature_everywhere(trained):
    run = convnet.load(trained.path)
    saved = json.loads((trained.path / "model.json").read_text())
    assert saved["format"] == 3 and saved["calibration"]["method"] == "temperature"
    temperature = saved["calibration"]["temperature"]
    assert temperature == run.record.calibration.temperature and temperature != 1.0
    test = run.own_data().test
    raw = run.predictor.logits(test.images).cpu()
    expected = (raw / temperature).softmax(1)
    assert torch.allclose(run.predictor.probabilities(test.images), expected, atol=1e-6)
    scored = run.evaluate(test)
    assert scored.loss == pytest.approx(float(F.cross_entropy(raw / temperature,
                                                              test.labels)), abs=1e-5)
    assert scored.to_dict()["calibration"]["after"] == saved["metrics"]["test"]["calibration"][
        "after"]


def test_the_onnx_file_gives_the_calibrated_probabilities(trained, tmp_path):
    pytest.importorskip("onnxruntime")
    from convnet.export.onnx_model import export_onnx
    from convnet.export.runtime import OnnxPredictor, metadata

    run = convnet.load(trained.path)
    exported = export_onnx(trained.path, tmp_path / "model.onnx")
    assert metadata(exported.path)["calibration"] == run.record.calibration.to_dict()
    images = run.own_data().test.images
    onnx = OnnxPredictor(exported.path, run.classes).probabilities(images)
    assert torch.allclose(onnx, run.predictor.probabilities(images), atol=1e-5)


def test_a_run_written_before_calibration_answers_as_it_did():
    run = convnet.load(FORMAT1)
    assert run.record.calibration == Calibration()
    images = torch.randint(0, 256, (3, *run.network.chw), dtype=torch.uint8)
    assert torch.allclose(run.predictor.probabilities(images),
                          run.predictor.logits(images).softmax(1).cpu())


def test_the_set_floor_is_the_split_conformal_quantile():
    scores = [round(0.1 * k, 1) for k in range(1, 10)]  # n = 9
    nine = Calibration("temperature", 1.0, 9, conformal=scores)
    assert nine.set_floor(0.9) == pytest.approx(1 - scores[8])  # rank ⌈10 × 0.9⌉ = 9
    assert nine.set_floor(0.5) == pytest.approx(1 - scores[4])  # rank ⌈10 × 0.5⌉ = 5
    eight = Calibration("temperature", 1.0, 8, conformal=scores[:8])
    assert eight.set_floor(0.9) == 0.0  # rank 9 of 8 scores: every class is in
    assert nine.prediction_set({"a": 0.5, "b": 0.3, "c": 0.2}, 0.5) == ["a"]
    assert nine.prediction_set({"a": 0.05, "b": 0.03}, 0.1) == []  # none is likely enough


@pytest.mark.parametrize("level", [0.9, 0.95])
def test_prediction_sets_hold_the_true_class_as_often_as_asked(level):
    from convnet.runs.calibration import coverage

    logits, labels = _sampled(1.5, count=22_000, classes=10, seed=7)
    calibration = calibrate(logits[:2000], labels[:2000])  # the validation images
    held, size = coverage(calibration, logits[2000:], labels[2000:], level)
    assert held == pytest.approx(level, abs=0.02) and 1 <= size <= 10


@pytest.mark.parametrize("level", [0.9, 0.95])
def test_a_model_right_more_often_than_asked_covers_as_asked_with_some_sets_empty(level):
    from convnet.runs.calibration import coverage

    logits, labels = _sampled(0.05, count=22_000, classes=10, seed=3)  # sharp: ~99% right
    assert float((logits.argmax(1) == labels).double().mean()) > 0.97
    calibration = calibrate(logits[:2000], labels[:2000])
    held, size = coverage(calibration, logits[2000:], labels[2000:], level)
    assert held == pytest.approx(level, abs=0.02) and size < 1  # not the accuracy


@pytest.mark.parametrize("bad", [1.5, 0, -0.2, 1.0, "0.9", True])
def test_a_bad_coverage_is_one_clear_error(bad):
    calibration = calibrate(*_sampled(1.0, count=100))
    with pytest.raises(convnet.ConvnetError, match=r"^set must be the share of images whose "
                       r"set holds the true class, between 0 and 1 \(e\.g\. 0\.9\)\. "
                       rf"Received: set={bad!r}\.$"):
        calibration.set_floor(bad)


def test_a_run_without_conformal_scores_refuses_sets_in_one_line(capsys, tmp_path):
    from convnet.cli import main

    image = tmp_path / "one.png"
    from PIL import Image

    Image.new("L", (28, 28)).save(image)
    assert main(["predict", str(FORMAT1), str(image), "--set", "0.9"]) == 1
    said = capsys.readouterr().err.strip()
    assert said.startswith("error: This run has no conformal scores for prediction sets")
    assert len(said.splitlines()) == 1


def test_predict_evaluate_serve_and_onnx_give_the_same_sets(trained, tmp_path, capsys):
    from convnet.cli import main
    from convnet.runs.predictor import with_sets

    run = convnet.load(trained.path)
    files = convnet.datasets.export(run.own_data(), tmp_path / "images", split="test",
                                    limit=6)
    assert main(["predict", str(trained.path), *map(str, files), "--set", "0.9",
                 "--json"]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    expected = with_sets(run.predict_files(files), run.record.calibration, 0.9)
    assert [row["set"] for row in printed] == [p.set for p in expected]
    assert all(row["coverage"] == 0.9 and row["set"][:1] in ([], [row["top"][0]["class"]])
               for row in printed)
    sets = run.evaluate(run.own_data().test).honesty["sets"]
    assert set(sets) == {"0.9", "0.95"} and all(0 <= s["coverage"] <= 1 for s in sets.values())
    pytest.importorskip("onnxruntime")
    from convnet.export.onnx_model import export_onnx
    from convnet.export.runtime import OnnxPredictor

    exported = export_onnx(trained.path, tmp_path / "model.onnx")
    onnx = with_sets(run.predict_files(files, OnnxPredictor(exported.path, run.classes)),
                     run.record.calibration, 0.9)
    assert [p.set for p in onnx] == [p.set for p in expected]
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from convnet.serve.app import create_app
    from convnet.serve.models import load_served

    with TestClient(create_app(load_served([str(trained.path)], "torch"))) as client:
        name = trained.path.name
        answer = client.post(f"/v1/models/{name}/predict?set=0.9",
                             content=Path(files[0]).read_bytes())
        assert answer.status_code == 200 and answer.json()["set"] == expected[0].set
        refused = client.post(f"/v1/models/{name}/predict?set=2",
                              content=Path(files[0]).read_bytes())
        assert refused.status_code == 422 and "set must be the share" in refused.text
