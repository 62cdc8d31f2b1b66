"""Near-duplicates: the candidate search equals a brute-force nearest-neighbour search, the
shifted correlation equals numpy's, and on real digits every kind of copy is found while
distinct digits are not paired."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import convnet
from convnet.data.preprocess import Preprocess, decode
from convnet.data.similar import candidates, correlation, near_pairs


def test_candidates_are_the_brute_force_nearest_neighbours():
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(300, 16)).astype(np.float32)
    codes /= np.linalg.norm(codes, axis=1, keepdims=True)
    cosines = codes @ codes.T
    np.fill_diagonal(cosines, -np.inf)
    nearest = np.argsort(-cosines, axis=1)[:, :3]
    expected = {tuple(sorted((i, int(j)))) for i in range(300) for j in nearest[i]}
    found = candidates(torch.from_numpy(codes), k=3)
    assert {tuple(pair) for pair in found.tolist()} == expected


def test_the_correlation_is_numpys_at_the_best_shift():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(2, 12, 12))
    b = np.stack([np.roll(a[0], (1, -2), axis=(0, 1)), rng.normal(size=(12, 12))])
    found = correlation(torch.tensor(a, dtype=torch.float32),
                        torch.tensor(b, dtype=torch.float32), shift=2)
    assert found[0] == pytest.approx(1.0, abs=1e-5)  # the copy, two pixels along
    windows = [np.corrcoef(a[1, 2:10, 2:10].ravel(), b[1, y:y + 8, x:x + 8].ravel())[0, 1]
               for y in range(5) for x in range(5)]
    assert found[1] == pytest.approx(max(windows), abs=1e-5)


PHOTOS = Path(__file__).resolve().parents[1] / "fixtures" / "photos"


def _decoded(image: Image.Image, side: int = 28, mode: str = "L") -> np.ndarray:
    return decode(_encoded(image, "PNG"), Preprocess(side, side, len(mode), "crop"))


def _encoded(image: Image.Image, kind: str, quality: int = 75) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, kind, quality=quality)
    return buffer.getvalue()


def _digit_copies(digit: np.ndarray) -> list[np.ndarray]:
    """A digit resized ×0.75 and saved as JPEG, shifted 2 px and 1 px, and brightened."""
    image = Image.fromarray(digit)
    small = Image.open(io.BytesIO(_encoded(image.resize((21, 21)), "JPEG")))
    shifted = image.transform((28, 28), Image.Transform.AFFINE, (1, 0, 2, 0, 1, -1))
    brighter = np.clip(digit.astype(int) * 1.3 + 20, 0, 255).astype(np.uint8)
    return [_decoded(small)[..., 0], _decoded(shifted)[..., 0], brighter]


def test_copies_of_real_digits_are_found_and_distinct_digits_are_not():
    images = convnet.datasets.load("digits").train.images[:500, 0].numpy()  # (500, 28, 28)
    originals = [3, 70, 222, 404]
    extra = [copy for index in originals for copy in _digit_copies(images[index])]
    pixels = torch.from_numpy(np.concatenate([images, np.stack(extra)])[:, None])
    found = near_pairs(lambda rows: pixels[list(rows)], len(pixels))
    pairs = {(i, j) for i, j, _ in found}
    # each original with its three copies, and the copies with each other: one group
    groups = [[original, *range(500 + 3 * n, 503 + 3 * n)]
              for n, original in enumerate(originals)]
    expected = {(a, b) for members in groups for a in members for b in members if a < b}
    assert {(members[0], copy) for members in groups for copy in members[1:]} <= pairs
    # beyond them, at most a pair of distinct digits that are one stroke, shifted (two
    # "1"s among these 500 are)
    assert len(pairs - expected) <= 2
    assert all(0.98 <= s <= 1.0 + 1e-6 for _, _, s in found)


def test_photo_copies_cropped_gray_or_brighter_are_found():
    photos = [Image.open(PHOTOS / name).convert("RGB") for name in ("chelsea.jpg",
                                                                     "coffee.jpg")]
    rows = [_decoded(photo, 64, "RGB") for photo in photos]
    for photo in photos:
        width, height = photo.size
        cropped = photo.crop((width // 50, height // 50, width - width // 50,
                              height - height // 50))
        half = Image.open(io.BytesIO(_encoded(photo.resize((width // 2, height // 2)),
                                              "JPEG", 60)))
        brighter = photo.point(lambda value: min(255, int(value * 1.2 + 10)))
        rows += [_decoded(copy, 64, "RGB") for copy in
                 (cropped, half, photo.convert("L").convert("RGB"), brighter)]
    digits = convnet.datasets.load("digits").train.images[:100]  # distinct look-alikes
    pixels = torch.cat([torch.from_numpy(np.stack(rows)).permute(0, 3, 1, 2),
                        F.interpolate(digits.float(), size=64).round().byte().expand(
                            -1, 3, -1, -1)])
    found = {(i, j) for i, j, _ in near_pairs(lambda r: pixels[list(r)], len(pixels))}
    for number in range(2):
        copies = range(2 + 4 * number, 6 + 4 * number)
        assert {(number, copy) for copy in copies} <= found
    assert all(j < 10 for _, j in found)  # the photos' copies only


def test_the_search_reports_its_progress_to_the_end():
    from convnet.data.similar import near_pairs

    images = torch.randint(0, 256, (300, 1, 16, 16), dtype=torch.uint8)
    seen = []
    near_pairs(lambda rows: images[list(rows)], len(images),
               progress=lambda done, total: seen.append((done, total)))
    assert seen[-1][0] == seen[-1][1] == 600  # two signature passes, one bar
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
