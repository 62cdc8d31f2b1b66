"""A dataset split written out as image files, one folder per class: sample pictures to
predict, explain and evaluate on, and a folder layout `--data` reads back."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from convnet.data.dataset import Dataset
from convnet.errors import ConvnetError


def _rows(labels: list[int], limit: int | None) -> list[int]:
    """Row indices in split order, taken class by class in turn, so that a limit gives
    every class its share."""
    per_class: dict[int, list[int]] = {}
    for row, label in enumerate(labels):
        per_class.setdefault(label, []).append(row)
    queues = [per_class[label] for label in sorted(per_class)]
    chosen: list[int] = []
    while any(queues) and (limit is None or len(chosen) < limit):
        for queue in queues:
            if queue and (limit is None or len(chosen) < limit):
                chosen.append(queue.pop(0))
    return sorted(chosen)


def export(dataset: Dataset, out: str | Path, split: str = "test", limit: int | None = None
           ) -> list[Path]:
    """Write ``split``'s images as PNGs to ``out/<class>/<row>.png``; returns the files.

    Raises:
        ConvnetError: for a split the dataset lacks, a bad limit, or an ``out`` with files.
    """
    images = {"train": dataset.train, "val": dataset.val, "test": dataset.test}.get(split)
    if images is None:
        have = [name for name in ("train", "val", "test")
                if getattr(dataset, name) is not None]
        raise ConvnetError(f"split={split!r}: {dataset.name!r} has the splits "
                           f"{', '.join(have)}. Choose one of them.")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ConvnetError(f"limit must be a positive integer. Received: limit={limit!r}.")
    out = Path(out)
    if out.is_file() or (out.is_dir() and any(out.iterdir())):
        raise ConvnetError(f"{str(out)!r} already holds files; nothing is written over "
                           "them. Choose a new folder.")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".partial"))
    try:
        written = []
        for row in _rows(images.labels.tolist(), limit):
            name = dataset.classes[int(images.labels[row])]
            pixels = images.images[row].permute(1, 2, 0).numpy()  # (C, H, W) -> (H, W, C)
            (staging / name).mkdir(exist_ok=True)
            picture = Image.fromarray(np.squeeze(pixels, 2) if pixels.shape[2] == 1 else pixels)
            picture.save(staging / name / f"{row:05d}.png")
            written.append(out / name / f"{row:05d}.png")
        if out.is_dir():
            out.rmdir()  # empty: checked above
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written
