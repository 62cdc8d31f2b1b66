"""A copy of a folder dataset with some images moved to other class folders; the original
is only read."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from convnet.atomic import unused_path
from convnet.errors import ConvnetError


def copy_relabelled(root: Path, moves: dict[str, str], out: Path) -> list[tuple[str, str]]:
    """Copy the tree under ``root`` to ``out`` with each file of ``moves`` (its path under
    ``root`` -> the class folder name it belongs in) put in that class folder of its split.

    The copy is built beside ``out`` and renamed into place, so an interrupted copy leaves
    no half-written ``out``. Returns (old, new) paths relative to ``out``, one per move.

    Raises:
        ConvnetError: when ``out`` exists, lies inside ``root``, or a moved file is not
            directly in a class folder.
    """
    root, out = root.resolve(), out.resolve()
    if out.exists():
        raise ConvnetError(f"fix_into={str(out)!r} exists already; give a new folder (the "
                           "copy is never written over anything).")
    if out.is_relative_to(root):
        raise ConvnetError(f"fix_into={str(out)!r} is inside the dataset {str(root)!r}; "
                           "give a folder outside it, or the copy would be read as data.")
    planned = [_moved(root, Path(path), folder) for path, folder in moves.items()]
    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        shutil.copytree(root, staging, symlinks=False)
        done = []
        for old, new in planned:
            target = unused_path(staging / new)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / old, target)
            done.append((str(old), str(target.relative_to(staging))))
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return done


def _moved(root: Path, path: Path, folder: str) -> tuple[Path, Path]:
    """(old, new) paths relative to ``root`` for one move into class folder ``folder``."""
    relative = path.resolve().relative_to(root)
    if len(relative.parts) < 2:
        raise ConvnetError(f"{path} is not inside a class folder of {root}; only images in "
                           "class folders can be moved to another class.")
    return relative, relative.parent.parent / folder / relative.name

