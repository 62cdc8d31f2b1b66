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
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock

from convnet.atomic import write_json
from convnet.data.cache import cache_dir
from convnet.data.dataset import Dataset, Split
from convnet.data.duplicates import Finder, exact_links, group
from convnet.data.layout import Entry, Layout, Problem, find_labelled, find_layout
from convnet.data.preprocess import Preprocess
from convnet.data.scan import Progress, Report, choose_preprocess, count_per_class, decode_all
from convnet.data.similar import near_pairs
from convnet.errors import ConvnetError, DiskFull
from convnet.resources import available_bytes, free_disk, human

CACHE_VERSION = 3  # bump when the decoded bytes for the same files would change


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


def check_room(layout: Layout, prep: Preprocess, cache: Path) -> None:
    """Refuse, with the figures, a decode the cache disk or the memory cannot hold (the
    decoded images are written to the cache, then the splits are read into memory)."""
    need = len(layout.entries) * prep.channels * prep.height * prep.width
    disk, memory = free_disk(cache), available_bytes("cpu")
    short = [f"{human(disk)} free on the cache disk ({cache})"] if need > 0.9 * disk else []
    if memory is not None and need > 0.9 * memory:
        short.append(f"{human(memory)} of memory available")
    if short:
        raise ConvnetError(
            f"{len(layout.entries):,} images at {prep.height}×{prep.width}×{prep.channels} "
            f"take {human(need)} decoded, and there is only {' and '.join(short)}. Use a "
            "smaller image_size, e.g. image_size=128, or free some space.")


def _remove_stale(folder: Path) -> None:
    """Staging folders of this key left by a process that was killed mid-decode, and an
    entry without its index (called with the key's lock held: no live process writes
    them)."""
    for stale in folder.parent.glob(f".{folder.name}.*.partial"):
        shutil.rmtree(stale, ignore_errors=True)
    if folder.exists() and not (folder / "index.json").is_file():  # damaged by hand
        shutil.rmtree(folder, ignore_errors=True)


def _build(layout: Layout, prep: Preprocess, folder: Path, progress: Progress | None) -> None:
    """Decode every file into ``folder`` (images.npy + index.json), atomically.

    Row i of images.npy is entry i; rows of files that could not be read stay zero and are
    marked by their reason in index.json.
    """
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.",
                                    suffix=".partial"))
    try:
        shape = (len(layout.entries), prep.channels, prep.height, prep.width)
        images = np.lib.format.open_memmap(staging / "images.npy", mode="w+", dtype=np.uint8,
                                           shape=shape)
        digests, reasons = [], []
        paths = [entry.path for entry in layout.entries]
        for row, item in enumerate(decode_all(paths, prep, progress=progress)):
            if item.pixels is not None:
                images[row] = item.pixels.transpose(2, 0, 1)  # (H, W, C) -> (C, H, W)
            digests.append(item.digest)
            reasons.append(item.reason)
        images.flush()
        del images
        write_json(staging / "index.json", {"digests": digests, "reasons": reasons})
        os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _report(layout: Layout, prep: Preprocess, index: dict, usable: list[bool],
            near: list) -> Report:
    reasons, digests = index["reasons"], index["digests"]
    problems = sorted(list(layout.problems) + [
        Problem(str(entry.path), reason)
        for entry, reason in zip(layout.entries, reasons) if reason is not None],
        key=lambda problem: problem.path)
    entries = layout.entries
    links = exact_links(digests) + [(i, j, s, "near") for i, j, s in near]
    groups = group(len(entries), links, [str(e.path) for e in entries],
                   [e.split for e in entries], [layout.classes[e.label] for e in entries])
    return Report(str(layout.root), layout.classes, prep,
                  count_per_class(entries, usable, len(layout.classes)), problems, groups,
                  list(layout.empty_classes))


NEAR_FILE = "near-v1.json"  # rename when the near-duplicate method changes


def _near(folder: Path, index: dict, pixels: np.ndarray, search: bool,
          finders: Sequence[Finder] = (), progress: Progress | None = None) -> list[list]:
    """Near-duplicate pairs [i, j, similarity] between usable entries whose bytes differ,
    found once per decoded folder (when ``search``) and kept beside it: by the perceptual
    search, then by each of ``finders`` (kept as ``near-<name>.json``; pairs the search
    found already are not repeated). Pairs an earlier load's finders kept are read too."""
    rows = [i for i, reason in enumerate(index["reasons"]) if reason is None]

    def fetch(picked) -> torch.Tensor:  # -> (len(picked), C, H, W) uint8
        return torch.from_numpy(np.ascontiguousarray(pixels[[rows[r] for r in picked]]))

    same = [index["digests"][row] for row in rows]  # the same bytes: exact duplicates
    searches = [(folder / NEAR_FILE, search and (
        lambda: near_pairs(fetch, len(rows), same, progress=progress)))]
    searches += [(folder / f"near-{name}.json", lambda find=find: find(fetch, len(rows), same))
                 for name, find in finders]
    searches += [(path, None) for path in sorted(folder.glob("near-*.json"))
                 if path.name != NEAR_FILE and path not in {p for p, _ in searches}]
    found: dict[tuple[int, int], list] = {}
    for path, find in searches:
        for i, j, similarity in _kept(path, find, rows):
            found.setdefault((i, j), [i, j, similarity])
    return list(found.values())


def _kept(path: Path, find, rows: list[int]) -> list[list]:
    """The pairs kept in ``path``; else found by ``find`` (rows of the usable entries,
    turned into entry indices) and kept there; else none."""
    with suppress(OSError, ValueError):  # none yet, or damaged: found again
        return json.loads(path.read_text())
    if not find:
        return []
    near = [[rows[i], rows[j], round(s, 4)] for i, j, s in find()]
    with suppress(OSError, DiskFull):  # a read-only or full cache: found again next time
        write_json(path, near)
    return near


def _split_rows(entries: list[Entry], usable: list[bool]) -> dict[str, list[int]]:
    """Each split's usable entries, by index (splits without any are left out)."""
    rows = {name: [i for i, e in enumerate(entries) if usable[i] and e.split == name]
            for name in ("train", "val", "test")}
    return {name: found for name, found in rows.items() if found}


def _splits(entries: list[Entry], rows: dict[str, list[int]], pixels: np.ndarray
            ) -> dict[str, Split]:
    """Each split's rows, read from the memory-mapped cache (N, C, H, W) uint8."""
    splits = {}
    for name, picked in rows.items():
        labels = torch.tensor([entries[i].label for i in picked], dtype=torch.long)
        splits[name] = Split(torch.from_numpy(pixels[picked]), labels)  # copies those rows
    return splits


def _decoded(layout: Layout, prep: Preprocess, progress: Progress | None
             ) -> tuple[dict, np.ndarray, bool, Path]:
    """(index, memory-mapped (N, C, H, W) uint8 pixels, whether it was cached already, the
    cache folder)."""
    folder = cache_dir("decoded") / cache_key(layout, prep)
    cached = (folder / "index.json").is_file()
    if not cached:
        check_room(layout, prep, folder.parent)
        with FileLock(str(folder) + ".lock"):  # two runs on one folder decode it once
            _remove_stale(folder)
            if not (folder / "index.json").is_file():
                _build(layout, prep, folder, progress)
    index = json.loads((folder / "index.json").read_text())
    return index, np.load(folder / "images.npy", mmap_mode="r"), cached, folder


def class_lookup(classes: list[str], aliases: list[str] | None = None) -> dict[str, int]:
    """Folder name -> class index: the names as they are, then lower case with ``_`` for
    spaces (``egyptian_cat``), then ``aliases`` (other names in the same order)."""
    lookup: dict[str, int] = {}
    for index, name in reversed(list(enumerate(classes))):  # the first of equal keys wins
        lookup[name.lower().replace(" ", "_")] = index
        lookup[name.lower()] = index
    for index, name in enumerate(aliases or []):
        lookup.setdefault(name, index)
    lookup.update({name: index for index, name in enumerate(classes)})
    return lookup


def _known(name: str, lookup: dict[str, int]) -> int | None:
    for key in (name, name.lower(), name.lower().replace(" ", "_")):
        if key in lookup:
            return lookup[key]
    return None


def load_labelled(data: Path, classes: list[str], prep: Preprocess,
                  aliases: list[str] | None = None) -> tuple[Split, str]:
    """Labelled images to score a model of ``classes`` on, and what they are: the test/
    files when the folder has any, else every image in it. Decoded through the cache.

    A class folder may name its class as written, in lower case with underscores, or by an
    alias (`class_lookup`); the data may hold any subset of the classes.

    Raises:
        ConvnetError: for a class the model does not know, or nothing readable.
    """
    layout = find_labelled(Path(data))
    lookup = class_lookup(classes, aliases)
    found = {name: _known(name, lookup) for name in layout.classes}
    unknown = [name for name, index in found.items() if index is None]
    if unknown:
        shown = ", ".join(classes) if len(classes) <= 20 else \
            f"{len(classes):,} of them, e.g. {', '.join(classes[:5])}"
        raise ConvnetError(f"data={str(data)!r} has class(es) {', '.join(unknown[:10])} "
                           f"that the run does not know; its classes are {shown}. Give "
                           "labelled images of those classes only.")
    index, pixels, _, _ = _decoded(layout, prep, None)
    which = "test" if "test" in layout.splits() else None
    rows = [i for i, entry in enumerate(layout.entries)
            if index["reasons"][i] is None and which in (None, entry.split)]
    if not rows:
        raise ConvnetError(f"data={str(data)!r}: none of its images could be read. Run "
                           "`convnet check-data` on it to see why.")
    labels = torch.tensor([found[layout.classes[layout.entries[i].label]] for i in rows],
                          dtype=torch.long)
    split = Split(torch.from_numpy(pixels[rows]), labels)  # copies those rows
    return split, f"{Path(data).name} {'test/' if which else '(every image)'}"


def load_folder(data: Path, prep: Preprocess | None = None, *, image_size: int | None = None,
                resize: str = "crop", progress: Progress | None = None,
                near: bool = False, finders: Sequence[Finder] = (),
                near_progress: Progress | None = None) -> Dataset:
    """Scan, decode (or read from the cache) and split a folder or CSV dataset.

    Bad files are skipped and listed in ``dataset.report``; nothing here raises for them.
    Exact duplicates are always listed there; near ones when ``near`` (or when an earlier
    load with ``near`` found them for the same decode), by ``finders`` too when given.

    Raises:
        ConvnetError: for a layout that cannot be a dataset (fewer than two classes...).
    """
    if not Path(data).exists():
        raise ConvnetError(f"{str(data)!r} does not exist. Give a folder with one sub-folder "
                           "of images per class, or a CSV of path,label rows.")
    started = time.perf_counter()
    layout = find_layout(Path(data))
    prep = prep or choose_preprocess(layout, image_size, resize)
    index, pixels, cached, folder = _decoded(layout, prep, progress)
    usable = [reason is None for reason in index["reasons"]]
    report = _report(layout, prep, index, usable,
                     _near(folder, index, pixels, near, finders if near else (),
                           near_progress))
    report.seconds, report.cached = time.perf_counter() - started, cached
    rows = _split_rows(layout.entries, usable)
    splits = _splits(layout.entries, rows, pixels)
    report.rows = {name: [str(layout.entries[i].path) for i in picked]
                   for name, picked in rows.items()}
    if "train" not in splits:
        raise ConvnetError(f"data={str(data)!r}: none of its training files could be read "
                           "as an image. Run `convnet check-data` on it to see why.")
    name = Path(data).name if Path(data).is_dir() else Path(data).stem
    return Dataset(name, layout.classes, splits["train"], splits.get("test"),
                   source=f"folder {Path(data).absolute()}", val=splits.get("val"),
                   report=report, preprocess=prep, flip_ok=True)
