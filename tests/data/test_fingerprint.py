"""The fingerprint's flat-background share, which tells drawings from photos, checked
against numpy on images of known make-up."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from convnet.data.fingerprint import FLAT_SIDE, FLAT_TONE, flat_share
from convnet.data.sources import folder_layout


def _reference(image: np.ndarray) -> float:
    """numpy's count of the pixels within `FLAT_TONE` of the commonest grey level."""
    values = image.astype(np.int64).ravel()
    tone = np.bincount(values, minlength=256).argmax()
    return float(np.mean(np.abs(values - tone) <= FLAT_TONE))


def _drawings(root, rng, count=5):
    """Strokes of light grey on black, a fifth to a third of each image, FLAT_SIDE px
    (decoded at the measure's own size, so the reference sees the same pixels)."""
    images = []
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for index in range(count):
            image = np.zeros((FLAT_SIDE, FLAT_SIDE), np.uint8)
            rows = rng.integers(FLAT_SIDE // 5, FLAT_SIDE // 3)
            image[:rows] = rng.integers(150, 256, (rows, FLAT_SIDE))  # the strokes
            image[rows:] = rng.integers(0, 6, (FLAT_SIDE - rows, FLAT_SIDE))  # near-black
            Image.fromarray(image, "L").save(root / name / f"{index}.png")
            images.append(image)
    return images


def test_the_share_is_the_median_of_each_images_flat_pixels(tmp_path):
    images = _drawings(tmp_path / "drawn", np.random.default_rng(0))
    share = flat_share(folder_layout(tmp_path / "drawn"))
    assert share == pytest.approx(float(np.median([_reference(i) for i in images])))
    assert 0.6 < share < 0.85


def test_photo_like_noise_is_not_flat_and_an_unreadable_folder_has_no_share(tmp_path):
    rng = np.random.default_rng(1)
    for name in ("a", "b"):
        (tmp_path / "noise" / name).mkdir(parents=True)
        for index in range(3):
            Image.fromarray(rng.integers(0, 256, (FLAT_SIDE, FLAT_SIDE), np.uint8), "L").save(
                tmp_path / "noise" / name / f"{index}.png")
            (tmp_path / "broken" / name).mkdir(parents=True, exist_ok=True)
            (tmp_path / "broken" / name / f"{index}.png").write_bytes(b"not an image")
    # uniform noise: about 17 of 256 grey levels fall within the tone's window
    assert flat_share(folder_layout(tmp_path / "noise")) < 0.15
    assert flat_share(folder_layout(tmp_path / "broken")) is None
