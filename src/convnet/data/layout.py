"""Which files belong to which class and split: a folder per class, or a CSV of path,label.

Accepted layouts (the ones Keras, torchvision and fastai users already have)::

    photos/cat/1.jpg, photos/dog/2.jpg              one folder per class
    photos/train/cat/..., photos/test/cat/...       the same under train/ [val/] [test/]
    labels.csv  with rows  path,label[,split]       paths relative to the CSV's folder

Hidden files and folders (``.DS_Store``, ``.ipynb_checkpoints``), ``__MACOSX`` and
``__pycache__`` are never classes and never images.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

from convnet.errors import ConvnetError

SPLITS = ("train", "val", "test")
SPLIT_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val",
                 "validation": "val", "test": "test", "testing": "test"}
JUNK_NAMES = {"__MACOSX", "__pycache__", "Thumbs.db", "desktop.ini"}


@dataclass(frozen=True)
class Entry:
    """One file of the dataset, before it is read."""

    path: Path
    label: int  # index into Layout.classes
    split: str  # train | val | test


@dataclass(frozen=True)
class Problem:
    """A file or folder that cannot be used, and why."""

    path: str
    reason: str


@dataclass
class Layout:
    """Classes in their saved order, the files found, and what could not be used."""

    root: Path
    classes: list[str]
    entries: list[Entry]
    problems: list[Problem] = field(default_factory=list)
    empty_classes: list[str] = field(default_factory=list)

    def splits(self) -> set[str]:
        return {entry.split for entry in self.entries}


def is_hidden(name: str) -> bool:
    return name.startswith(".") or name in JUNK_NAMES


def _walk(folder: Path, problems: list[Problem]) -> list[Path]:
    """Every visible file under ``folder``, following symlinks but never around a loop."""
    files: list[Path] = []
    seen: set[tuple[int, int]] = set()
    pending = [folder]
    while pending:
        current = pending.pop()
        try:
            info = current.stat()
        except OSError as error:
            problems.append(Problem(str(current), os_reason(error)))
            continue
        if (info.st_dev, info.st_ino) in seen:
            problems.append(Problem(str(current), "symlink loop (folder already visited)"))
            continue
        seen.add((info.st_dev, info.st_ino))
        try:
            children = sorted(os.scandir(current), key=lambda item: item.name)
        except OSError as error:
            problems.append(Problem(str(current), os_reason(error)))
            continue
        for child in children:
            if is_hidden(child.name):
                continue
            path = Path(child.path)
            try:
                is_dir = child.is_dir()  # follows symlinks
            except OSError as error:
                problems.append(Problem(str(path), os_reason(error)))
                continue
            if is_dir:
                pending.append(path)
            elif child.is_symlink() and not path.exists():
                problems.append(Problem(str(path), _broken_link_reason(path)))
            else:
                files.append(path)
    return sorted(files)


def _broken_link_reason(path: Path) -> str:
    try:
        path.stat()
    except FileNotFoundError:
        return "broken symlink (target does not exist)"
    except OSError as error:
        return os_reason(error)
    return "broken symlink"


def os_reason(error: OSError) -> str:
    """Why the OS would not let us read a path, in the words the data report uses."""
    if error.errno == 40:  # ELOOP
        return "symlink loop"
    if isinstance(error, PermissionError):
        return "cannot be read (permission denied)"
    if isinstance(error, FileNotFoundError):
        return "no such file"
    return f"cannot be read ({error.strerror or error})"


def _class_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not is_hidden(p.name))


def _from_folders(root: Path, training: bool = True) -> Layout:
    split_dirs = {SPLIT_ALIASES[p.name.lower()]: p for p in _class_folders(root)
                  if p.name.lower() in SPLIT_ALIASES}
    if not training:  # any labelled folders: classes from every split, none required
        split_dirs = split_dirs or {"train": root}
        names = {p.name for folder in split_dirs.values() for p in _class_folders(folder)}
        return _entries(root, sorted(names), split_dirs)
    if split_dirs and "train" not in split_dirs:
        raise ConvnetError(f"data={str(root)!r} has {', '.join(sorted(split_dirs))}/ but no "
                           "train/ folder. Add train/<class>/ folders, or put the class "
                           "folders directly in the data folder.")
    split_dirs = split_dirs or {"train": root}
    classes = [p.name for p in _class_folders(split_dirs["train"])]
    for split, folder in split_dirs.items():
        extra = sorted({p.name for p in _class_folders(folder)} - set(classes))
        if extra:
            raise ConvnetError(f"{folder} has class folder(s) {', '.join(extra)} that "
                               f"train/ does not have. Every {split} class needs training "
                               "images: add them to train/ or remove the folder.")
    return _entries(root, classes, split_dirs)


def _entries(root: Path, classes: list[str], split_dirs: dict[str, Path]) -> Layout:
    problems: list[Problem] = []
    entries: list[Entry] = []
    for split in (s for s in SPLITS if s in split_dirs):  # train first: repeats are later
        folder = split_dirs[split]
        for label, name in enumerate(classes):
            if (folder / name).is_dir():
                entries += [Entry(path, label, split)
                            for path in _walk(folder / name, problems)]
    return Layout(root, classes, entries, problems)


def _from_csv(file: Path) -> Layout:
    try:
        with file.open(newline="", encoding="utf-8-sig") as handle:
            rows = [row for row in csv.reader(handle) if row and any(cell.strip()
                                                                      for cell in row)]
    except (OSError, UnicodeDecodeError) as error:
        raise ConvnetError(f"data={str(file)!r} cannot be read as a UTF-8 CSV ({error}).") \
            from None
    if rows and [cell.strip().lower() for cell in rows[0][:2]] == ["path", "label"]:
        rows = rows[1:]  # header
    bad = next((n for n, row in enumerate(rows, 1) if len(row) not in (2, 3)), None)
    if not rows or bad is not None:
        raise ConvnetError(f"data={str(file)!r} must be a CSV with rows path,label or "
                           f"path,label,split (train|val|test). "
                           f"{'It is empty.' if not rows else f'Row {bad} has another shape.'}")
    classes = sorted({row[1].strip() for row in rows})
    index = {name: i for i, name in enumerate(classes)}
    entries = []
    for number, row in enumerate(rows, 1):
        split = SPLIT_ALIASES.get(row[2].strip().lower()) if len(row) == 3 else "train"
        if split is None:
            raise ConvnetError(f"{file} row {number}: split must be train, val or test. "
                               f"Received: {row[2]!r}.")
        entries.append(Entry(file.parent / row[0].strip(), index[row[1].strip()], split))
    return Layout(file.parent, classes, entries)


def _drop_empty_classes(layout: Layout) -> Layout:
    """A class without training images is reported and left out; labels are renumbered."""
    counts = [0] * len(layout.classes)
    for entry in layout.entries:
        counts[entry.label] += entry.split == "train"
    keep = [i for i, n in enumerate(counts) if n > 0]
    if len(keep) == len(layout.classes):
        return layout
    renumber = {old: new for new, old in enumerate(keep)}
    problems = list(layout.problems)
    problems += [Problem(str(entry.path), "its class has no training images")
                 for entry in layout.entries if entry.label not in renumber]
    entries = [Entry(e.path, renumber[e.label], e.split) for e in layout.entries
               if e.label in renumber]
    empty = [name for i, name in enumerate(layout.classes) if counts[i] == 0]
    return Layout(layout.root, [layout.classes[i] for i in keep], entries, problems, empty)


def find_labelled(data: Path) -> Layout:
    """Classes and files of labelled images to score a model on: any of the layouts, with
    or without train/, any number of classes (the model's classes are checked later)."""
    layout = _from_csv(data) if data.is_file() else _from_folders(data, training=False)
    if not layout.entries:
        raise ConvnetError(f"data={str(data)!r} holds no images in class folders. Put each "
                           "class's images in a sub-folder named after the class (e.g. cat/), "
                           "optionally under test/.")
    return layout


def find_layout(data: Path) -> Layout:
    """Classes and files of a folder dataset or a CSV; nothing is decoded yet.

    Raises:
        ConvnetError: when no usable class is found or the layout is inconsistent.
    """
    layout = _drop_empty_classes(_from_csv(data) if data.is_file() else _from_folders(data))
    if len(layout.classes) < 2:
        found = ", ".join(layout.classes) or "none"
        raise ConvnetError(f"data={str(data)!r} needs at least 2 classes with training "
                           f"images; found {found}. Put each class's images in a sub-folder "
                           "named after the class (e.g. cat/ and dog/), or give a folder with the "
                           "official MNIST (IDX) or CIFAR-10 binary files.")
    return layout
