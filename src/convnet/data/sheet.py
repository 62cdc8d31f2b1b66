"""A contact sheet: images in a grid, each with a caption, as one PNG (Pillow only)."""

from __future__ import annotations

import io
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from convnet.atomic import write_atomic
from convnet.errors import ConvnetError

THUMB = 96  # px: small digits are enlarged to be seen, photos shrunk to fit
CAPTION_LINES, LINE = 2, 12  # caption lines under each image, and their height in px


def contact_sheet(images: torch.Tensor, captions: list[list[str]], path: Path,
                  columns: int = 8) -> Path:
    """Write uint8 images (N, C, H, W) as a grid with up to two caption lines each."""
    count = len(images)
    if count == 0:
        raise ConvnetError("images must hold at least one image for a contact sheet. "
                           f"Received: images of shape {tuple(images.shape)}.")
    columns = min(columns, count)
    rows = -(-count // columns)
    cell_h = THUMB + CAPTION_LINES * LINE + 6
    sheet = Image.new("RGB", (columns * (THUMB + 4) + 4, rows * cell_h + 4), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for number, (image, lines) in enumerate(zip(images, captions)):
        left = 4 + (number % columns) * (THUMB + 4)
        top = 4 + (number // columns) * cell_h
        sheet.paste(_thumbnail(image), (left, top))
        for line_number, line in enumerate(lines[:CAPTION_LINES]):
            draw.text((left, top + THUMB + 2 + line_number * LINE), line[:18], fill="black",
                      font=font)
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    write_atomic(path, buffer.getvalue())
    return path


def _thumbnail(image: torch.Tensor) -> Image.Image:
    """One uint8 image (C, H, W) scaled to fit THUMB×THUMB, centred on white."""
    pixels = image.permute(1, 2, 0).numpy()  # (H, W, C)
    picture = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
    height, width = pixels.shape[:2]
    scale = THUMB / max(height, width)
    resample = Image.Resampling.NEAREST if scale >= 2 else Image.Resampling.LANCZOS
    picture = picture.convert("RGB").resize((max(1, round(width * scale)),
                                             max(1, round(height * scale))), resample)
    framed = Image.new("RGB", (THUMB, THUMB), "white")
    framed.paste(picture, ((THUMB - picture.width) // 2, (THUMB - picture.height) // 2))
    return framed
