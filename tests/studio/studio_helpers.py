"""Zips for the studio tests: real digits as class folders, and the kinds we refuse."""

from __future__ import annotations

import io
import stat
import zipfile

from PIL import Image

import convnet


def digits_zip(per_class: int, digits: tuple[int, ...] = (3, 7), start: int = 0,
               wrapper: str = "") -> bytes:
    """A zip of ``per_class`` real digit PNGs per class folder (``3/``, ``7/``)."""
    split = convnet.datasets.load("digits").train
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for digit in digits:
            rows = (split.labels == digit).nonzero().flatten()[start:start + per_class]
            for row in rows.tolist():
                image = io.BytesIO()
                Image.fromarray(split.images[row, 0].numpy()).save(image, "PNG")
                archive.writestr(f"{wrapper}{digit}/{row}.png", image.getvalue())
    return buffer.getvalue()


def evil_zip(kind: str) -> bytes:
    """A zip that climbs out (``slip``), holds a symlink, or unpacks 1000-fold (``bomb``)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a/1.png", b"x")
        archive.writestr("b/1.png", b"y")
        if kind == "slip":
            archive.writestr("../../outside.png", b"escaped")
        elif kind == "absolute":
            archive.writestr("/tmp/outside.png", b"escaped")
        elif kind == "symlink":
            link = zipfile.ZipInfo("a/link.png")
            link.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(link, "/etc/passwd")
        elif kind == "bomb":
            archive.writestr("a/big.png", b"\0" * (50 * 1024 * 1024))
    return buffer.getvalue()
