"""From an image file to the uint8 tensor a model expects: one function for every command."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from convnet.errors import ConvnetError

MAX_PIXELS = 64_000_000  # larger images are refused before decoding (decompression bombs)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm",
                  ".ppm", ".pbm"}


def _to_mode(image: Image.Image, channels: int) -> Image.Image:
    """Grayscale ``L`` or ``RGB``; transparent pixels are composited on white."""
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    if image.mode == "I;16" or image.mode.startswith("I"):
        array = np.asarray(image, dtype=np.float64)
        top = array.max() if array.size and array.max() > 0 else 1.0
        image = Image.fromarray((array / top * 255).round().astype(np.uint8), "L")
    return image.convert("L" if channels == 1 else "RGB")


def load_image(path: str | Path, height: int, width: int, channels: int) -> torch.Tensor:
    """Read any image Pillow can decode as uint8 (C, H, W) at the given size.

    EXIF orientation is applied; the image is centre-cropped to the target aspect ratio,
    then resized.

    Raises:
        ConvnetError: naming the file and the reason when it cannot be read as an image.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = MAX_PIXELS
            with Image.open(path) as image:
                image = ImageOps.exif_transpose(image)
                image = _to_mode(image, channels)
                if image.size != (width, height):
                    image = ImageOps.fit(image, (width, height), Image.Resampling.BILINEAR)
                array = np.asarray(image, dtype=np.uint8)
    except FileNotFoundError:
        raise ConvnetError(f"{path}: no such file.") from None
    except IsADirectoryError:
        raise ConvnetError(f"{path}: is a folder, not an image.") from None
    except UnidentifiedImageError:
        raise ConvnetError(f"{path}: not an image Pillow can read (PNG, JPEG, BMP, GIF, "
                           "WebP, TIFF...).") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ConvnetError(f"{path}: larger than {MAX_PIXELS:,} pixels; refused as a possible "
                           "decompression bomb.") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ConvnetError(f"{path}: damaged or truncated image ({error}).") from None
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1)  # (H, W, C) -> (C, H, W)


def expand_paths(items: list[str | Path]) -> list[Path]:
    """Files as given, and the image files inside given folders (sorted, hidden ones skipped)."""
    paths: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            paths.extend(sorted(
                p for p in item.rglob("*")
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(item).parts)))
        else:
            paths.append(item)
    return paths
