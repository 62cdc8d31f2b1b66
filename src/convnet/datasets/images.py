"""Folder and CSV datasets: scanned and decoded once into a memory-mapped uint8 cache.

The cache is keyed by the file list with each file's size and modification time, the
classes, and the preprocessing; change any of them and the files are read again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock

from convnet.cache import cache_dir
from convnet.datasets.dataset import Dataset, Split
from convnet.datasets.folder import Entry, Layout, Problem, find_layout
from convnet.datasets.scan import (
    Progress,
    Report,
    choose_preprocess,
    count_per_class,
    decode_all,
    find_duplicates,
)
from convnet.errors import ConvnetError
from convnet.preprocess import Preprocess
from convnet.rundir import write_json

CACHE_VERSION = 1  # bump when the decoded bytes for the same files would change


def _stat(path: Path) -> list[int]:
    try:
        info = path.stat()
        return [info.st_size, info.st_mtime_ns]
    except OSError:
        return [-1, -1]


def cache_key(layout: Layout, prep: Preprocess) -> str:
    """SHA-256 over the file list, sizes, mtimes, classes and preprocessing."""
    digest = hashlib.sha256(json.dumps(
        {"version": CACHE_VERSION, "prep": prep.to_dict(), "classes": layout.classes},
        sort_keys=True).encode())
    for entry in layout.entries:
        digest.update(json.dumps([str(entry.path.absolute()), entry.split, entry.label,
                                  *_stat(entry.path)]).encode())
    return digest.hexdigest()[:32]


def _build(layout: Layout, prep: Preprocess, folder: Path, progress: Progress | None) -> None:
    """Decode every file into ``folder`` (images.npy + index.json), atomically."""
    decoded = decode_all([entry.path for entry in layout.entries], prep, progress=progress)
    usable = [item.pixels is not None for item in decoded]
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.",
                                    suffix=".partial"))
    try:
        shape = (sum(usable), prep.channels, prep.height, prep.width)
        images = np.lib.format.open_memmap(staging / "images.npy", mode="w+", dtype=np.uint8,
                                           shape=shape)
        row = 0
        for item in decoded:
            if item.pixels is not None:
                images[row] = item.pixels.transpose(2, 0, 1)  # (H, W, C) -> (C, H, W)
                row += 1
        images.flush()
        del images
        write_json(staging / "index.json", {
            "digests": [item.digest for item in decoded],
            "reasons": [item.reason for item in decoded]})
        os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _report(layout: Layout, prep: Preprocess, reasons: list[str | None],
            digests: list[str]) -> Report:
    usable = [reason is None for reason in reasons]
    problems = sorted(list(layout.problems) + [
        Problem(str(entry.path), reason)
        for entry, reason in zip(layout.entries, reasons) if reason is not None],
        key=lambda problem: problem.path)
    return Report(str(layout.root), layout.classes, prep,
                  count_per_class(layout.entries, usable, len(layout.classes)), problems,
                  find_duplicates(layout.entries, digests, layout.classes),
                  list(layout.empty_classes))


def _splits(entries: list[Entry], usable: list[bool], images: torch.Tensor
            ) -> dict[str, Split]:
    rows = torch.tensor([i for i, ok in enumerate(usable) if ok], dtype=torch.long)
    row_of = {index: row for row, index in enumerate(rows.tolist())}
    splits = {}
    for name in ("train", "val", "test"):
        chosen = [i for i, e in enumerate(entries) if usable[i] and e.split == name]
        if chosen:
            index = torch.tensor([row_of[i] for i in chosen], dtype=torch.long)
            labels = torch.tensor([entries[i].label for i in chosen], dtype=torch.long)
            splits[name] = Split(images[index], labels)
    return splits


def load_folder(data: Path, prep: Preprocess | None = None, *, image_size: int | None = None,
                resize: str = "crop", progress: Progress | None = None) -> Dataset:
    """Scan, decode (or read from the cache) and split a folder or CSV dataset.

    Bad files are skipped and listed in ``dataset.report``; nothing here raises for them.

    Raises:
        ConvnetError: for a layout that cannot be a dataset (fewer than two classes...).
    """
    started = time.perf_counter()
    layout = find_layout(Path(data))
    prep = prep or choose_preprocess(layout, image_size, resize)
    key = cache_key(layout, prep)
    folder = cache_dir("decoded") / key
    cached = (folder / "index.json").is_file()
    if not cached:
        with FileLock(str(folder) + ".lock"):  # two runs on one folder decode it once
            if not (folder / "index.json").is_file():
                _build(layout, prep, folder, progress)
    index = json.loads((folder / "index.json").read_text())
    pixels = np.load(folder / "images.npy", mmap_mode="r")  # (N_ok, C, H, W) uint8
    images = torch.from_numpy(np.array(pixels))  # one copy into memory
    report = _report(layout, prep, index["reasons"], index["digests"])
    report.seconds, report.cached = time.perf_counter() - started, cached
    splits = _splits(layout.entries, [r is None for r in index["reasons"]], images)
    if "train" not in splits:
        raise ConvnetError(f"--data {str(data)!r}: none of its training files could be read "
                           "as an image. Run `convnet check-data` on it to see why.")
    name = Path(data).name if Path(data).is_dir() else Path(data).stem
    return Dataset(name, layout.classes, splits["train"], splits.get("test"),
                   source=f"folder {Path(data).absolute()}", val=splits.get("val"),
                   report=report, preprocess=prep, flip_ok=True)
