"""Read every file of a folder dataset once: decode what can be decoded, report the rest.

The same pass serves `convnet check-data` and every training run. Bad files are reported by
path and reason and skipped; they never reach an epoch.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convnet.data.duplicates import Group
from convnet.data.layout import Entry, Layout, Problem, os_reason
from convnet.data.preprocess import ImageError, Preprocess, decode, peek

IMBALANCE_WARNING = 3.0  # largest / smallest class above this ratio gets a warning
DECODE_SAMPLE = 16  # files timed to estimate a folder's decoding (`seconds_per_file`)
SERIAL_BELOW = 512  # fewer files than this are decoded in-process (pool start-up costs more)
GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F"}

Progress = Callable[[int, int], None]  # (files done, files in all)


@dataclass
class Decoded:
    """What one file became: pixels and a content hash, or the reason it failed."""

    digest: str  # BLAKE2b of the file's bytes ("" when it could not be read)
    pixels: np.ndarray | None  # (H, W, C) uint8
    reason: str | None = None


def decode_file(path: Path, prep: Preprocess) -> Decoded:
    """Read a file once, hash its bytes, decode them. Never raises for a bad file."""
    try:
        if not path.is_file() and path.exists():
            return Decoded("", None, "not a regular file")
        data = path.read_bytes()
    except OSError as error:
        return Decoded("", None, os_reason(error))
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()
    try:
        return Decoded(digest, decode(data, prep))
    except ImageError as error:
        return Decoded(digest, None, str(error))


def seconds_per_file(paths: list[Path], prep: Preprocess, sample: int = DECODE_SAMPLE
                     ) -> float:
    """Mean seconds `decode_file` takes here for a file of ``paths`` (a sample spread
    over them, in this process, its slowest file left out): what decoding the folder will
    cost, per file and core, measured instead of assumed (a 12-megapixel JPEG took 9 ms
    here, a photo of a few hundred px under 2 ms: bench/HISTORY.md, "Phone photos").

    The mean, because the folder's cost is a sum: a few slower files (larger, or PNG) the
    median leaves out are paid all the same (cat/dog's estimate was 0.61-0.72 of its load
    with the median, 1.03-1.05 with the mean; `python -m bench data decode-estimate`).
    The slowest is left out because one file can pay for a cold disk or a first import."""
    step = max(1, len(paths) // sample)
    taken = []
    for path in paths[::step][:sample]:
        began = time.perf_counter()
        decode_file(path, prep)
        taken.append(time.perf_counter() - began)
    kept = sorted(taken)[:-1] if len(taken) > 2 else taken
    return sum(kept) / len(kept) if kept else 0.0


def _decode_chunk(paths: list[Path], prep: Preprocess) -> list[Decoded]:
    return [decode_file(path, prep) for path in paths]


def decode_all(paths: list[Path], prep: Preprocess, workers: int | None = None,
               progress: Progress | None = None) -> Iterator[Decoded]:
    """`decode_file` over many files, in order, on every core for large lists.

    A generator: results stream to the caller chunk by chunk, so memory stays flat however
    many files there are.
    """
    workers = workers or os.cpu_count() or 1
    done = 0
    if len(paths) < SERIAL_BELOW or workers == 1:
        for path in paths:
            yield decode_file(path, prep)
            done += 1
            if progress and done % 64 == 0:
                progress(done, len(paths))
    else:
        chunk = 256
        chunks = [paths[i : i + chunk] for i in range(0, len(paths), chunk)]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for part in pool.map(_decode_chunk, chunks, [prep] * len(chunks)):
                yield from part
                done += len(part)
                if progress:
                    progress(done, len(paths))
    if progress:
        progress(len(paths), len(paths))


def choose_preprocess(layout: Layout, image_size: int | None = None, resize: str = "crop",
                      sample: int = 200) -> Preprocess:
    """Size and channels from a sample of file headers (nothing is decoded).

    Grayscale when every sampled image is grayscale, else RGB. The size is the images' own
    when they all share one (up to 256 px), else the median shorter side clamped to
    8..128 px (square) -- or ``image_size`` when given.
    """
    train = [e.path for e in layout.entries if e.split == "train"] or \
        [e.path for e in layout.entries]
    step = max(1, len(train) // sample)
    headers = []
    for path in train[::step][:sample]:
        try:
            headers.append(peek(path))
        except ImageError:
            continue  # the full pass reports it
    channels = 1 if headers and all(mode in GRAY_MODES for _, _, mode in headers) else 3
    if image_size is not None:
        return Preprocess(image_size, image_size, channels, resize)
    sizes = {(w, h) for w, h, _ in headers}
    if len(sizes) == 1 and max(next(iter(sizes))) <= 256:
        width, height = next(iter(sizes))
        return Preprocess(height, width, channels, resize)
    shorter = sorted(min(w, h) for w, h, _ in headers) or [64]
    side = int(min(max(shorter[len(shorter) // 2], 8), 128))
    return Preprocess(side, side, channels, resize)


@dataclass(repr=False)
class Report:
    """What the scan found: usable images per class and split, and everything wrong."""

    root: str
    classes: list[str]
    preprocess: Preprocess
    counts: dict[str, list[int]]  # split -> usable images per class
    problems: list[Problem] = field(default_factory=list)  # skipped files, by path
    duplicates: list[Group] = field(default_factory=list)  # exact and near copies
    empty_classes: list[str] = field(default_factory=list)
    seconds: float = 0.0  # scan + decode (or cache read) time
    cached: bool = False  # True when the decoded images came from the cache
    rows: dict[str, list[str]] = field(default_factory=dict)  # split -> each row's path

    def __repr__(self) -> str:
        usable = sum(sum(counts) for counts in self.counts.values())
        return (f"Report({self.root}: {usable:,} usable images in {len(self.classes)} "
                f"classes, {len(self.problems):,} skipped, {len(self.duplicates):,} groups of "
                "copies)")

    def _repr_html_(self) -> str:
        """In a notebook: counts, skipped files, copies and warnings."""
        from convnet.data.display import report_html

        return report_html(self)

    @property
    def imbalance(self) -> float:
        """Largest over smallest training class count."""
        train = [n for n in self.counts.get("train", []) if n > 0]
        return max(train) / min(train) if train else 1.0

    @property
    def leaks(self) -> list[Group]:
        """Copies that cross splits or carry different labels: they falsify scores."""
        return [g for g in self.duplicates if g.flagged]

    def warnings(self) -> list[str]:
        notes = [f"class {name!r} has no training images; it is left out"
                 for name in self.empty_classes]
        if self.imbalance > IMBALANCE_WARNING:
            notes.append(f"classes are imbalanced: the largest has {self.imbalance:.1f}× the "
                         "images of the smallest (see --balance)")
        if self.leaks:
            notes.append(f"{len(self.leaks)} group(s) of copies span splits or classes: test "
                         "scores count images the network trained on, or a label is wrong "
                         "(train --dedupe drops the evaluation copies)")
        within = len(self.duplicates) - len(self.leaks)
        if within:
            notes.append(f"{within} group(s) of copies within one split and class (they weigh "
                         "those images more; check-data --json lists them)")
        return notes

    def blocking(self) -> list[str]:
        """What makes `--strict` refuse to train."""
        return ([f"{p.path}: {p.reason}" for p in self.problems]
                + [g.describe() for g in self.leaks]
                + [f"class {name!r} has no training images" for name in self.empty_classes])

    def to_dict(self) -> dict[str, Any]:
        return {"root": self.root, "classes": self.classes,
                "preprocess": self.preprocess.to_dict(), "counts": self.counts,
                "imbalance": round(self.imbalance, 3),
                "skipped": [{"path": p.path, "reason": p.reason} for p in self.problems],
                "duplicates": [g.to_dict() for g in self.duplicates],
                "empty_classes": self.empty_classes, "warnings": self.warnings(),
                "seconds": round(self.seconds, 3), "cached": self.cached}


def count_per_class(entries: list[Entry], usable: list[bool], k: int) -> dict[str, list[int]]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0] * k)
    for entry, ok in zip(entries, usable):
        if ok:
            counts[entry.split][entry.label] += 1
    return dict(counts)
