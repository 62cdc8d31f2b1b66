"""The speed probe measures a few real steps, and a folder's plan, which weighs the chosen
size before decoding and again with the data loaded, measures it only once. Across
processes, the fastest measurement seen on this machine is the one plans use."""

from __future__ import annotations

import json

import pytest
import torch

from convnet.network import build
from convnet.plan.probe import pass_seconds_per_image, seconds_per_image

ARGS = ("conv4k3-relu-gap-fc", (8, 8, 1), 2, 4, torch.device("cpu"), "fp32")


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVNET_CACHE", str(tmp_path))
    seconds_per_image.cache_clear()
    pass_seconds_per_image.cache_clear()
    yield tmp_path / "probes" / "speeds.json"
    seconds_per_image.cache_clear()
    pass_seconds_per_image.cache_clear()


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


def test_a_forward_pass_is_timed_apart_from_a_step_and_leaves_the_random_state(store):
    """The pass probe is stored under its own key per precision (a step's is another), and
    draws its random input without moving torch's generator."""
    arch, shape, classes, batch, device = "conv8k3-relu-gap-fc", (16, 16, 3), 3, 4, \
        torch.device("cpu")
    before = torch.random.get_rng_state()
    fp32 = pass_seconds_per_image(arch, shape, classes, batch, device, "fp32")
    assert torch.equal(torch.random.get_rng_state(), before)
    assert 0 < fp32 < 1
    pass_seconds_per_image(arch, shape, classes, batch, device, "auto")
    seconds_per_image(arch, shape, classes, batch, device, "fp32")
    keys = [json.loads(key) for key in json.loads(store.read_text())]
    assert sorted(key[-1] for key in keys if "pass" in key) == ["auto", "fp32"]
    assert sum("pass" not in key for key in keys) == 1


def test_a_forward_pass_costs_less_than_a_training_step(store):
    """Reference: the same network's forward alone against forward, backward and AdamW,
    timed by the two probes at the same batch (a step does the pass's work and more)."""
    arch, shape, batch, device = "conv16k3-relu-conv16k3-relu-gap-fc", (32, 32, 3), 16, \
        torch.device("cpu")
    build(arch, shape, 10)  # the network builds (a typo in the spec would fail here)
    step = seconds_per_image(arch, shape, 10, batch, device, "fp32")
    forward = pass_seconds_per_image(arch, shape, 10, batch, device, "fp32")
    assert forward < step


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_plans_pass_probe_times_fp32_once_per_network_and_process(monkeypatch,
                                                                      precision):
    """fp32 passes are the run's own where it trains in fp32 (one probe serves both);
    in bf16, fp32 is probed at the first side asked only, every other side scaled by the
    ratio there, and a second plan in the process (the one after decoding) keeps it
    rather than probing again at its own side."""
    import convnet.plan.probe as probe_module

    asked: list[tuple[int, str]] = []

    def fake(arch, shape, classes, batch, device, at):  # fp32 1.8x bf16, growing with area
        asked.append((shape[0], at))
        return 1e-3 * (shape[0] / 96) ** 2 * (1.8 if at == "fp32" else 1.0)

    monkeypatch.setattr(probe_module, "pass_seconds_per_image", fake)
    monkeypatch.setattr(probe_module, "_RATIOS", {})
    sides = (128, 160, 192)
    for plan in range(2):  # before decoding, from the smallest side; after, at one
        passes = probe_module.passes_on(torch.device("cpu"), precision)
        found = {(side, fp32): passes("efficientnet-lite0", (side, side, 3), 2, fp32)
                 for side in (sides if plan == 0 else sides[::-1]) for fp32 in (False, True)}
        for side in sides:  # the scaled fp32 time is the one a probe would give
            expected = 1e-3 * (side / 96) ** 2 * 1.8
            assert found[side, True] == pytest.approx(expected)
            assert found[side, False] == pytest.approx(expected if precision == "fp32"
                                                       else expected / 1.8)
    # in fp32 only fp32 is ever probed; in bf16, fp32 once, at the first side of the first
    # plan (the second plan asked 192 px first)
    fp32_sides = [side for side, at in asked if at == "fp32"]
    if precision == "fp32":
        assert set(fp32_sides) == set(sides)
    else:
        assert fp32_sides == [128]
    assert {at for _, at in asked} == ({"fp32"} if precision == "fp32" else {"fp32", "bf16"})
