"""The run format: the typed record round-trips, runs written before the layout change
(format 1) still load, score what they recorded and get a report, and the validation rule
saved with a run gives back exactly the images training held out."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import convnet
from conftest import TINY_DATA
from convnet.data.dataset import Split, Validation, validation_share
from convnet.errors import ConvnetError
from convnet.runs.format import FORMAT, RunRecord

FORMAT1 = Path(__file__).resolve().parent.parent / "fixtures" / "run-format1"


def test_the_record_round_trips_through_json(tiny_run):
    meta = json.loads((tiny_run / "model.json").read_text())
    assert meta["format"] == FORMAT
    record = RunRecord.from_dict(meta)
    assert record.to_dict() == meta
    assert record.config.arch == meta["arch"] and record.config.lr == meta["config"]["lr"]
    planned = {choice["name"]: choice for choice in record.plan["choices"]}
    assert planned["arch"]["given"] and planned["epochs"]["given"]
    assert not planned["ema"]["given"] and not planned["flip"]["given"]


def test_a_format_1_run_loads_and_scores_what_it_recorded():
    meta = json.loads((FORMAT1 / "model.json").read_text())
    assert meta["format"] == 1 and "validation" not in meta
    run = convnet.load(FORMAT1)
    assert run.record.validation is None and run.classes == ["x", "not-x"]
    assert run.evaluate_data().accuracy == pytest.approx(meta["metrics"]["test"]["accuracy"])
    [answer] = run.predict_files([FORMAT1 / "model.json"])  # not an image: a clear error
    assert answer.error and answer.probabilities is None


def test_a_format_1_run_gets_a_report(tmp_path):
    pytest.importorskip("matplotlib")
    from convnet.explain.report import report

    folder = shutil.copytree(FORMAT1, tmp_path / "old")
    result = report(folder)
    assert result.scored_on == "test" and result.html.is_file()


def test_the_saved_rule_draws_the_held_out_images_again():
    data = convnet.datasets.load(TINY_DATA)
    rule = Validation.for_run(data, 0.2, seed=5)
    assert rule.source == "held-out" and rule.count == 16  # 20% of 40 per class
    train, val = rule.draw(data)
    again_train, again_val = Validation.from_dict(rule.to_dict()).draw(data)
    assert torch.equal(val.images, again_val.images) and len(train) + len(val) == 80
    assert torch.equal(train.images, again_train.images)


def test_an_unset_share_holds_out_ten_percent_but_at_least_200_images_up_to_a_fifth():
    assert validation_share(0.3, 50) == 0.3  # given: as given, whatever the size
    assert validation_share(None, 50_000) == 0.1
    assert validation_share(None, 1_000) == 0.2  # 10% would be 100 images
    assert validation_share(None, 1_500) * 1_500 == pytest.approx(200)
    assert validation_share(None, 80) == 0.2
    rule = Validation.for_run(convnet.datasets.load(TINY_DATA), None, seed=5)
    assert rule.fraction == 0.2 and rule.count == 16


def test_the_rule_refuses_data_that_changed():
    data = convnet.datasets.load(TINY_DATA)
    rule = Validation.for_run(data, 0.2, seed=5)
    labels = data.train.labels.clone()
    labels[:4] = 1 - labels[:4]  # other labels: other images would be held out
    changed = type(data)(data.name, data.classes, Split(data.train.images, labels), data.test,
                         data.source)
    with pytest.raises(ConvnetError, match="no longer gives the validation images"):
        rule.draw(changed)
