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
    grid = torch.linspace(0.2, 5.0, 2401)
    losses = torch.stack([F.cross_entropy(logits / t, labels) for t in grid])
    assert fitted == pytest.approx(float(grid[losses.argmin()]), abs=0.005)
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


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("calibrated") / "run"
    return convnet.train(data="x-or-not-x:train=60,test=20", arch="conv4k3-relu-maxpool2-fc",
                         epochs=2, val_split=0.3, out=out)


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
