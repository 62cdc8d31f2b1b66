"""The speed probe measures a few real steps, and a folder's plan, which weighs the chosen
size before decoding and again with the data loaded, measures it only once. Across
processes, the fastest measurement seen on this machine is the one plans use."""

from __future__ import annotations

import json

import pytest
import torch

from convnet.plan.probe import seconds_per_image

ARGS = ("conv4k3-relu-gap-fc", (8, 8, 1), 2, 4, torch.device("cpu"), "fp32")


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVNET_CACHE", str(tmp_path))
    seconds_per_image.cache_clear()
    yield tmp_path / "probes" / "speeds.json"
    seconds_per_image.cache_clear()


def _set_all(path, seconds: float) -> None:
    stored = json.loads(path.read_text())
    path.write_text(json.dumps({key: seconds for key in stored}))


def test_a_measurement_is_positive_and_taken_once_per_process(store):
    first = seconds_per_image(*ARGS)
    assert 0 < first < 1 and seconds_per_image(*ARGS) == first
    assert seconds_per_image.cache_info().hits == 1
    (key,) = json.loads(store.read_text())
    assert "cpu|" in key and "conv4k3-relu-gap-fc" in key


def test_the_fastest_measurement_on_this_machine_wins(store):
    seconds_per_image(*ARGS)
    _set_all(store, 1e-9)  # faster than any real step: kept and used
    seconds_per_image.cache_clear()
    assert seconds_per_image(*ARGS) == 1e-9
    _set_all(store, 1e3)  # slower than this measurement: replaced by it
    seconds_per_image.cache_clear()
    measured = seconds_per_image(*ARGS)
    assert measured < 1 and json.loads(store.read_text()) == {
        key: measured for key in json.loads(store.read_text())}


def test_a_damaged_store_is_measured_afresh(store):
    store.parent.mkdir(parents=True)
    store.write_text("{not json")
    assert 0 < seconds_per_image(*ARGS) < 1
    assert len(json.loads(store.read_text())) == 1
