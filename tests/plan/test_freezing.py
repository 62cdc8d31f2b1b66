"""How many layers a fine-tune keeps frozen: the candidates are where the maps shrink, the
plan freezes the first stage by default and more only when the budget presses."""

from __future__ import annotations

from dataclasses import replace

import pytest

from convnet.data.fingerprint import Fingerprint
from convnet.network.model import layer_shapes
from convnet.network.spec import Flatten
from convnet.plan import freezing
from convnet.plan.finetune import make_finetune_plan
from convnet.training.config import TrainConfig

SMALL = "conv16k3-relu-maxpool2-conv32k3-relu-maxpool2-conv64k3-relu-gap-fc"


@pytest.mark.parametrize("arch, shape", [("efficientnet-lite0", (160, 160, 3)),
                                         ("efficientnet-lite2", (224, 224, 3)),
                                         (SMALL, (64, 64, 3))])
def test_candidates_are_where_the_maps_shrink(arch, shape):
    infos = layer_shapes(arch, shape, 4)
    head = next(i for i, info in enumerate(infos) if isinstance(info.layer, Flatten))
    total = sum(info.macs for info in infos)
    found = freezing.candidates(arch, shape, 4)
    assert found[0].layers == 0 and found[-1].layers == head
    for freeze in found[1:-1]:  # the layer that opens each stage shrinks the maps
        assert infos[freeze.layers].out_shape[-1] < infos[freeze.layers - 1].out_shape[-1]
    for freeze in found:
        assert freeze.share == pytest.approx(sum(i.macs for i in infos[: freeze.layers])
                                             / total)
    assert [f.layers for f in found] == sorted({f.layers for f in found})
    assert all(0 < f.step_factor <= 1 for f in found)


def _fingerprint(images: int) -> Fingerprint:
    return Fingerprint(2, images, images // 2, 3, (200, 300, 400), (0.8, 1.25), None)


def _probe(scale: float):
    def probe(arch, shape, classes, batch):  # seconds per image, growing with the area
        return scale * 0.0144 * (shape[0] / 96) ** 2
    return probe


def _frozen(plan) -> str:
    return next(c for c in plan.choices if c.name == "frozen_layers").reason


def test_the_first_stage_is_frozen_when_the_budget_allows():
    config = TrainConfig(data="photos", arch="efficientnet-lite0", init="imagenet")
    plan = make_finetune_plan(_fingerprint(1000), config, "cpu", _probe(0.3), resizable=True)
    first = freezing.candidates("efficientnet-lite0", (96, 96, 3), 2)[1]
    assert plan.config.frozen_layers == first.layers and plan.config.image_size == 224
    assert "as accurate and faster" in _frozen(plan)
    assert not plan.pressed  # the largest side, every planned epoch, the default freeze


def test_a_tight_budget_freezes_more_before_it_shrinks_the_images():
    config = TrainConfig(data="photos", arch="efficientnet-lite0", init="imagenet",
                         time="60s")
    found = freezing.candidates("efficientnet-lite0", (96, 96, 3), 2)
    # at the default freeze 128 px takes ~53 s of the 50; 29 frozen, ~48 s, keep 128 px
    plan = make_finetune_plan(_fingerprint(1000), config, "cpu", _probe(1), budget=50,
                              resizable=True)
    assert plan.config.frozen_layers > found[1].layers
    assert plan.config.image_size >= freezing.SIDE_FLOOR and plan.config.epochs == 3
    assert "fit the budget" in _frozen(plan) and plan.pressed
    # no epochs fit at 128 px or more, even with every layer before the head frozen: the
    # head alone on features computed once, at the largest side that fits
    alone = make_finetune_plan(_fingerprint(1000), config, "cpu", _probe(2.5), budget=55,
                               resizable=True)
    assert alone.config.frozen_layers == found[-1].layers and alone.config.epochs == 0
    assert alone.config.image_size >= freezing.SIDE_FLOOR and alone.seconds <= 55
    assert "no epochs fit the budget" in _frozen(alone) and alone.most_epochs == 0
    # nothing fits even at the smallest side: the head alone, at the smallest side
    hopeless = make_finetune_plan(_fingerprint(1000), config, "cpu", _probe(50), budget=55,
                                  resizable=True)
    assert hopeless.config.frozen_layers == found[-1].layers and hopeless.config.epochs == 0
    assert hopeless.config.image_size == 96 and "nothing else" in _frozen(hopeless)


def test_the_head_alone_is_weighed_only_where_the_epochs_are_not_given():
    config = TrainConfig(data="photos", arch="efficientnet-lite0", init="imagenet",
                         time="60s", epochs=3)
    found = freezing.candidates("efficientnet-lite0", (96, 96, 3), 2)
    given = make_finetune_plan(_fingerprint(1000), config, "cpu", _probe(6), budget=55,
                               resizable=True)
    assert given.config.epochs == 3 and given.config.frozen_layers == found[-1].layers
    alone = make_finetune_plan(_fingerprint(1000), replace(config, epochs=0, time=None),
                               "cpu", _probe(1), resizable=True)
    assert alone.config.epochs == 0 and alone.config.frozen_layers == found[-1].layers
    assert alone.config.image_size == 224 and alone.config.patience is None


def test_a_given_count_is_kept():
    config = TrainConfig(data="photos", arch="efficientnet-lite0", init="imagenet",
                         frozen_layers=0, time="60s")
    plan = make_finetune_plan(_fingerprint(1000), config, "cpu", _probe(1), budget=50,
                              resizable=True)
    assert plan.config.frozen_layers == 0 and _frozen(plan) == "given"
    assert plan.config.image_size == 96  # the budget then shrinks the images instead
    assert not plan.pressed  # the epochs and the (given) frozen layers held


def test_a_network_without_an_earlier_stage_trains_every_layer_unless_pressed():
    """No map shrinks before the pooling: the default is none frozen (freezing all of it
    would train the head alone), and only a budget that presses freezes every layer."""
    flat = "conv16k3p1-relu-conv16k3p1-relu-gap-fc"
    assert [f.layers for f in freezing.candidates(flat, (96, 96, 3), 2)] == [0, 5]
    config = TrainConfig(data="photos", arch=flat, init="imagenet")
    plan = make_finetune_plan(_fingerprint(1000), config, "cpu", _probe(0.01), resizable=True)
    assert plan.config.frozen_layers == 0 and "no earlier stage" in _frozen(plan)
    pressed = make_finetune_plan(_fingerprint(1000), replace(config, time="60s"), "cpu",
                                 _probe(50), budget=55, resizable=True)
    assert pressed.config.frozen_layers == 5
