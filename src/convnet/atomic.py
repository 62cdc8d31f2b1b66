"""Writing files so that a crash leaves the old content or all of the new, never a mix.

Used by every stage that writes: the decode cache (data), checkpoints (train) and run
folders (runs).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from convnet.errors import DiskFull

# Write failures that mean "no room": free space, a quota, or a file-size limit (ulimit -f).
NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def umask() -> int:
    """The process's file-creation mask (reading it means setting it, so set it back)."""
    current = os.umask(0)
    os.umask(current)
    return current


def size_text(count: int) -> str:
    """``1.4 MB`` for a byte count (decimal units, as disk tools print them)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"


def no_room(path: Path, needed: int, error: OSError) -> DiskFull:
    """The one-line error for a write that found no room, with the bytes needed and free."""
    folder = path.parent
    try:
        free = f"{size_text(shutil.disk_usage(folder).free)} free there"
    except OSError:
        free = "the free space could not be read"
    reason = "a file-size limit (ulimit -f) is below that" if error.errno == errno.EFBIG \
        else (error.strerror or str(error)).lower()
    return DiskFull(f"Could not write {path.name} in {folder}: it needs {size_text(needed)} "
                    f"({needed:,} bytes) and {reason}; {free}.", str(folder), needed)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` so that ``path`` holds either the old content or all of the new.

    Raises:
        DiskFull: when the disk, a quota or a file-size limit leaves no room for ``data``
            (``path`` keeps its old content and no temp file is left).
    """
    path = Path(path)
    try:
        _write_atomic(path, data)
    except OSError as error:
        if error.errno in NO_ROOM:
            raise no_room(path, len(data), error) from None
        raise


def _write_atomic(path: Path, data: bytes) -> None:
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(temp, 0o666 & ~umask())  # mkstemp makes 0600; give the usual mode
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_json(path: Path, value: Any) -> None:
    write_atomic(path, (json.dumps(value, indent=2) + "\n").encode())


def unused_path(path: Path) -> Path:
    """``path``, or ``name-2.ext``, ``name-3.ext``... where that name is taken (a broken
    symlink takes a name too): what the copies we write use, so that none replaces a file."""
    number, candidate = 1, path
    while candidate.exists() or candidate.is_symlink():
        number += 1
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
    return candidate
