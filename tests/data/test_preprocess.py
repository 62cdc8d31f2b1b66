"""One decoder for every command: formats, EXIF orientation, crop or pad, alpha on white."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from convnet.data.preprocess import ImageError, Preprocess, decode


@pytest.mark.parametrize("suffix", ["png", "jpg", "bmp", "gif", "webp", "tiff"])
def test_every_common_format_decodes_to_the_asked_shape(tmp_path, suffix):
    path = tmp_path / f"image.{suffix}"
    Image.new("RGB", (30, 20), (200, 30, 30)).save(path)
    pixels = decode(path, Preprocess(12, 12, 3))
    assert pixels.shape == (12, 12, 3) and pixels.dtype == np.uint8
    assert pixels[..., 0].mean() > 150 and pixels[..., 1].mean() < 80


def test_exif_orientation_is_applied(tmp_path):
    array = np.zeros((10, 20), dtype=np.uint8)
    array[:, 10:] = 255  # left half black, right half white
    image = Image.fromarray(array, "L")
    exif = image.getexif()
    exif[0x0112] = 6  # display rotated 90° clockwise: the left half ends up on top
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif, quality=95)
    pixels = decode(path, Preprocess(20, 10, 1))[..., 0]  # (H=20, W=10): no resize needed
    assert pixels[:8].mean() < 40 and pixels[12:].mean() > 215


def test_pad_letterboxes_and_crop_fills(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("L", (40, 20), 255).save(path)
    padded = decode(path, Preprocess(20, 20, 1, "pad"))[..., 0]
    cropped = decode(path, Preprocess(20, 20, 1, "crop"))[..., 0]
    assert padded[0].max() == 0 and padded[-1].max() == 0 and padded[10].min() == 255
    assert cropped.min() == 255


def test_palette_transparency_is_composited_on_white(tmp_path):
    image = Image.new("P", (8, 8), 0)
    image.putpalette([0, 0, 0] * 256)
    image.info["transparency"] = 0
    path = tmp_path / "clear.png"
    image.save(path, transparency=0)
    assert decode(path, Preprocess(8, 8, 3)).min() == 255


def test_eps_and_other_formats_are_not_tried(tmp_path):
    path = tmp_path / "figure.eps"
    path.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n")
    with pytest.raises(ImageError, match="not an image"):
        decode(path, Preprocess(8, 8, 3))


def test_an_oversized_header_is_a_reason_not_a_leaked_warning(tmp_path):
    import struct
    import warnings
    import zlib

    from convnet.data.preprocess import peek

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    # 10,000 × 8,000: past the 64 M limit (Pillow warns) but under twice it (Pillow refuses)
    header = struct.pack(">IIBBBBB", 10_000, 8_000, 8, 0, 0, 0, 0)
    path = tmp_path / "huge.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(ImageError, match="refused before decoding"):
            peek(path)
    assert not [w for w in seen if "Decompression" in str(w.category)]


@pytest.mark.parametrize("prep", [Preprocess(48, 48, 3), Preprocess(40, 64, 3, "pad"),
                                  Preprocess(48, 48, 1, "crop", 0.875)])
def test_a_large_jpeg_decodes_reduced_and_as_a_full_decode_would(tmp_path, monkeypatch,
                                                                  prep):
    """A JPEG far larger than the asked size is decoded at a fraction of its size (its
    DCT scaled), and the pixels match those of a full decode resized the same way."""
    from PIL import ImageOps

    from convnet.data import preprocess

    rng = np.random.default_rng(0)
    smooth = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)  # broad shapes, no fine noise
    big = Image.fromarray(smooth).resize((1600, 1200), Image.Resampling.BICUBIC)
    path = tmp_path / "big.jpg"
    big.save(path, quality=95)
    sizes = []
    to_mode = preprocess._to_mode
    monkeypatch.setattr(preprocess, "_to_mode",
                        lambda image, channels: sizes.append(image.size) or
                        to_mode(image, channels))
    got = decode(path, prep).astype(float)
    assert sizes[0][0] < 1600 and min(sizes[0]) >= max(prep.height, prep.width)
    with Image.open(path) as image:  # the reference: every pixel decoded, then resized
        image = image.convert("L" if prep.channels == 1 else "RGB")
        size = (prep.width, prep.height)
        if prep.fraction < 1:
            image = ImageOps.fit(image, size, Image.Resampling.BILINEAR,
                                 bleed=(1 - prep.fraction) / 2)
        else:
            fit = ImageOps.fit if prep.resize == "crop" else ImageOps.pad
            image = fit(image, size, Image.Resampling.BILINEAR)
        expected = np.array(image, dtype=float).reshape(got.shape)
    assert np.abs(got - expected).mean() < 1.0 and np.abs(got - expected).max() < 8
