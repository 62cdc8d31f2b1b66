"""Whether flips are safe is read from the images: mirrored digits are not digits, mirrored
symmetric shapes are the same shapes, and a folder of digit PNGs is treated like the IDX
digits. The image detail measure finds upscaled images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import convnet
import convnet.plan
from convnet.data.dataset import Split
from convnet.data.fingerprint import detail_side
from convnet.data.mirror import mirror_check


def test_digits_are_not_mirror_safe_and_symmetric_shapes_are():
    digits = convnet.datasets.load("digits")
    assert not mirror_check(digits.train, 10).flips_ok
    shapes = convnet.datasets.load("x-or-not-x")
    check = mirror_check(shapes.train, 2)
    assert check.flips_ok and check.accuracy > 0.6


def test_left_and_right_arrows_are_told_apart_only_unmirrored():
    generator = torch.Generator().manual_seed(0)
    right = torch.zeros(100, 1, 9, 9, dtype=torch.uint8)
    right[:, :, 4, 1:8] = 255  # a shaft
    right[:, :, 3, 6] = right[:, :, 5, 6] = 255  # the head on the right
    noise = torch.randint(0, 60, right.shape, generator=generator, dtype=torch.uint8)
    images = torch.cat([right, right.flip(-1)]) | torch.cat([noise, noise])
    labels = torch.tensor([0] * 100 + [1] * 100)
    check = mirror_check(Split(images, labels), 2)
    assert check.accuracy == 1.0 and check.mirrored == 0.0 and not check.flips_ok


def test_a_folder_of_digit_pngs_gets_no_flips_like_the_idx_digits(tmp_path):
    digits = convnet.datasets.load("digits")
    convnet.datasets.export(digits, tmp_path / "pngs", split="train", limit=600)
    plan = convnet.plan.preview(data=str(tmp_path / "pngs"), epochs=1)
    flip = {choice.name: choice for choice in plan.choices}["flip"]
    assert plan.config.flip is False and not flip.given
    assert convnet.plan.preview(data="digits", epochs=1).config.flip is False


def _save(pixels: np.ndarray, path) -> None:
    Image.fromarray(pixels).save(path)


def test_detail_finds_upscaled_images_and_none_in_fine_texture(tmp_path):
    rng = np.random.default_rng(0)
    blocky, fine = [], []
    for i in range(8):
        small = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        _save(np.asarray(Image.fromarray(small).resize((200, 200), Image.Resampling.BICUBIC)),
              tmp_path / f"up{i}.png")
        blocky.append(tmp_path / f"up{i}.png")
        _save(rng.integers(0, 256, (200, 200, 3), dtype=np.uint8), tmp_path / f"fine{i}.png")
        fine.append(tmp_path / f"fine{i}.png")
    assert detail_side(blocky, 3) in (16, 24, 32, 48)  # far below the files' 200 px
    assert detail_side(fine, 3) is None


@pytest.mark.parametrize("count", [0, 1])
def test_too_few_images_to_check_keep_flips(count):
    split = Split(torch.zeros(count, 1, 4, 4, dtype=torch.uint8), torch.zeros(count,
                                                                                dtype=torch.long))
    assert mirror_check(split, 2).flips_ok


def test_detail_is_measured_only_where_the_planner_could_shrink_the_images(tmp_path,
                                                                         monkeypatch):
    from convnet.data import fingerprint, folder_layout
    from convnet.data.fingerprint import KEPT_SIDE, of_layout
    from convnet.plan.planner import BUDGET_SIZE_CAP, SIZE_CAP

    # uniform images up to KEPT_SIDE are kept at their size on every device, budget or not
    assert min([*SIZE_CAP.values(), *BUDGET_SIZE_CAP.values()]) >= KEPT_SIDE
    rng = np.random.default_rng(0)
    for side in (KEPT_SIDE, KEPT_SIDE + 8):
        for label in ("a", "b"):
            (tmp_path / str(side) / label).mkdir(parents=True)
            for i in range(3):
                _save(rng.integers(0, 256, (side, side, 3), dtype=np.uint8),
                      tmp_path / str(side) / label / f"{i}.png")
    measured = []
    monkeypatch.setattr(fingerprint, "detail_side",
                        lambda paths, channels: measured.append(len(paths)) or 16)
    kept = of_layout(folder_layout(str(tmp_path / str(KEPT_SIDE))))
    assert kept.uniform == (KEPT_SIDE, KEPT_SIDE) and kept.detail is None and not measured
    larger = of_layout(folder_layout(str(tmp_path / str(KEPT_SIDE + 8))))
    assert larger.detail == 16 and measured == [6]  # every file of the small folder


def test_detail_is_not_measured_for_a_fine_tune_or_the_choice_of_start(tmp_path, monkeypatch):
    """Only a plan from scratch shrinks images to their detail; measuring it decodes a
    sample of the folder, which a short budget of a fine-tune cannot spare."""
    from convnet.data import fingerprint, folder_layout
    from convnet.plan import choose, loading
    from convnet.training.config import TrainConfig

    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(3):
            _save(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8),
                  tmp_path / label / f"{i}.png")
    measured = []
    monkeypatch.setattr(fingerprint, "detail_side",
                        lambda paths, channels: measured.append(len(paths)) or 16)
    assert fingerprint.of_layout(folder_layout(str(tmp_path)), detail=False).detail is None
    assert not measured
    monkeypatch.setattr(loading, "_plan", lambda found, *args: found)
    tuned = loading.before_loading(TrainConfig(data=str(tmp_path), init="imagenet"), 0.0)
    assert tuned.detail is None and not measured
    scratch = loading.before_loading(TrainConfig(data=str(tmp_path)), 0.0)
    assert scratch.detail == 16 and measured == [6]
    monkeypatch.setattr(choose.extras, "installed", lambda *args: True)
    assert choose.applies(TrainConfig(data=str(tmp_path))) and measured == [6]
