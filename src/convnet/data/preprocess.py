"""From an image file to the uint8 tensor a model expects: one function for every command.

`Preprocess` is saved in every run's model.json, so train, evaluate and predict turn a file
into pixels the same way.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from convnet.errors import ConvnetError

MAX_PIXELS = 64_000_000  # larger images are refused before decoding (decompression bombs)
# Decoders we allow: Pillow would otherwise also try EPS (runs Ghostscript), PDF, FITS...
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF", "PPM")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm",
                  ".ppm", ".pbm", ".jfif"}
RESIZE_MODES = ("crop", "pad")


@dataclass(frozen=True)
class Preprocess:
    """How a file becomes model input: size, channels and how the aspect ratio is kept."""

    height: int
    width: int
    channels: int  # 1 (grayscale) or 3 (RGB)
    resize: str = "crop"  # crop: centre crop to the aspect ratio; pad: letterbox in black
    # The centred fraction of each side kept before resizing (crop only): ImageNet networks
    # are evaluated at 0.875, the 224 px centre of a photo resized to 256.
    fraction: float = 1.0

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ConvnetError(f"channels must be 1 or 3. Received: {self.channels}.")
        if self.resize not in RESIZE_MODES:
            raise ConvnetError(f"resize must be one of {', '.join(RESIZE_MODES)}. "
                               f"Received: {self.resize!r}.")
        if not 0.1 <= self.fraction <= 1.0 or (self.fraction < 1 and self.resize != "crop"):
            raise ConvnetError(f"fraction must be within 0.1-1 (with resize='crop'). "
                               f"Received: {self.fraction} with resize={self.resize!r}.")
        if self.height < 1 or self.width < 1:
            raise ConvnetError(f"image size must be positive. Received: "
                               f"{self.height}×{self.width}.")

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        if self.fraction == 1.0:  # runs without a centre crop read as they always did
            del values["fraction"]
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Preprocess:
        return cls(int(values["height"]), int(values["width"]), int(values["channels"]),
                   str(values.get("resize", "crop")), float(values.get("fraction", 1.0)))


class ImageError(ConvnetError):
    """One file could not be turned into an image; the message starts with its reason."""


def _to_mode(image: Image.Image, channels: int) -> Image.Image:
    """Grayscale ``L`` or ``RGB``; transparent pixels are composited on white."""
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    if image.mode.startswith("I") or image.mode == "F":
        array = np.asarray(image, dtype=np.float64)
        top = array.max() if array.size and array.max() > 0 else 1.0
        image = Image.fromarray((array / top * 255).round().astype(np.uint8), "L")
    return image.convert("L" if channels == 1 else "RGB")


def _draft(image: Image.Image, prep: Preprocess) -> None:
    """Let a JPEG decode at 1/2, 1/4 or 1/8 of its size, where that still leaves more
    pixels on each side than the resize keeps: the decoder then scales in the frequency
    domain instead of producing every pixel for the resize to throw away (a phone photo
    of 12 megapixels taken to 224 px decodes at 1/8). Either side may become the width
    (EXIF rotation), and a centre crop keeps ``fraction`` of each."""
    if image.format != "JPEG":
        return
    side = math.ceil(max(prep.height, prep.width) / prep.fraction)
    image.draft(image.mode, (side, side))


def _open(source: Path | bytes) -> Image.Image:
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    return Image.open(stream, formats=FORMATS)


def decode(source: Path | bytes, prep: Preprocess) -> np.ndarray:
    """Decode a file (path or its bytes) to uint8 (H, W, C) as ``prep`` says.

    Raises:
        ImageError: with the reason the file cannot be used (no traceback-worthy cases).
    """
    if isinstance(source, bytes) and not source:
        raise ImageError("empty file (0 bytes)")
    if isinstance(source, Path) and source.exists() and not source.is_file():
        raise ImageError("not a regular file" if not source.is_dir() else
                         "is a folder, not an image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with _open(source) as image:
                _draft(image, prep)
                image = ImageOps.exif_transpose(image)
                image = _to_mode(image, prep.channels)
                size = (prep.width, prep.height)
                if prep.fraction < 1:  # a border of (1 - fraction) / 2 off every side
                    image = ImageOps.fit(image, size, Image.Resampling.BILINEAR,
                                         bleed=(1 - prep.fraction) / 2)
                elif image.size != size:
                    fit = ImageOps.fit if prep.resize == "crop" else ImageOps.pad
                    image = fit(image, size, Image.Resampling.BILINEAR)
                array = np.array(image, dtype=np.uint8)  # a writable copy
    except FileNotFoundError:
        raise ImageError("no such file") from None
    except IsADirectoryError:
        raise ImageError("is a folder, not an image") from None
    except PermissionError:
        raise ImageError("cannot be read (permission denied)") from None
    except UnidentifiedImageError:
        raise ImageError("not an image (allowed: PNG, JPEG, BMP, GIF, WebP, TIFF, PPM)") \
            from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"larger than {MAX_PIXELS:,} pixels; refused before decoding as a "
                         "possible decompression bomb") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        if getattr(error, "errno", None) == 40:  # ELOOP
            raise ImageError("symlink loop") from None
        raise ImageError(f"damaged or truncated image ({error})") from None
    if array.ndim == 2:
        array = array[:, :, None]
    return array


def load_image(path: str | Path, prep: Preprocess) -> np.ndarray:
    """`decode` for a path, with the path in the error message.

    Raises:
        ConvnetError: ``"<path>: <reason>."``
    """
    try:
        return decode(Path(path), prep)
    except ImageError as error:
        raise ConvnetError(f"{path}: {error}.") from None


def thumbnail_png(path: Path, side: int, enlarge: bool = False) -> bytes:
    """A file's image upright (EXIF), in RGB, at most ``side`` px on its longer side, as
    PNG; with ``enlarge``, an image under half of ``side`` is enlarged by a whole factor
    (each pixel a sharp square). Opened as `decode` opens files: the same formats, and
    the same refusal of decompression bombs.

    Raises:
        ImageError: for a file that is not a readable image.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with _open(path) as image:
                small = ImageOps.exif_transpose(image).convert("RGB")
        small.thumbnail((side, side))
    except Exception as error:  # noqa: BLE001 - Pillow raises many kinds for a bad file
        raise ImageError(str(error) or type(error).__name__) from None
    if enlarge and max(small.size) < side // 2:
        factor = side // max(small.size)
        small = small.resize((small.width * factor, small.height * factor),
                             Image.Resampling.NEAREST)
    out = io.BytesIO()
    small.save(out, "PNG")
    return out.getvalue()


def peek(path: Path) -> tuple[int, int, str]:
    """(width, height, mode) from the header only; raises ImageError like `decode`."""
    if not path.is_file():  # a FIFO or device would block Image.open forever
        raise ImageError("not a regular file")
    try:
        with warnings.catch_warnings():  # a size past the limit is a reason, not a warning
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with _open(path) as image:
                return image.width, image.height, image.mode
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"larger than {MAX_PIXELS:,} pixels; refused before decoding as a "
                         "possible decompression bomb") from None
    except Exception as error:  # noqa: BLE001 - any header failure is reported, not raised
        raise ImageError(str(error) or type(error).__name__) from None


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
