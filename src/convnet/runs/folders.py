"""Run folders: where a new run goes, and a staging folder renamed into place at the end, so
a failed run leaves nothing behind and never replaces another."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

from convnet.atomic import umask
from convnet.errors import RunError


def choose_run_dir(out: str | Path | None, base_name: str, root: Path = Path("runs")) -> Path:
    """The folder a new run will be written to.

    ``out=None`` picks ``runs/<base_name>``, then ``-2``, ``-3``... whichever does not exist.
    An explicit ``out`` must not exist yet, or be an empty folder.

    Raises:
        RunError: if ``out`` already holds files.
    """
    if out is None:
        stem = f"{base_name}-{datetime.now():%Y%m%d-%H%M%S}"
        candidate, number = root / stem, 1
        while candidate.exists():
            number += 1
            candidate = root / f"{stem}-{number}"
        return candidate
    _check_new(Path(out))
    return Path(out)


def _check_new(out: Path) -> None:
    if out.is_file():
        raise RunError(f"out={str(out)!r} is a file; a run is a folder. Choose a new out "
                       "folder.")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RunError(f"out={str(out)!r} already exists and is not empty; a run is never "
                       "written over another. Choose a new out folder or remove that one.")


def check_writable(out: str | Path | None, root: Path = Path("runs")) -> None:
    """Fail now, before data is loaded and a model trained, if the run could not be written:
    creates the parent folder and a probe folder in it, then removes the probe.

    Raises:
        RunError: naming the folder and the operating system's reason.
    """
    if out is not None:
        _check_new(Path(out))
    parent = root if out is None else Path(out).parent
    blocking = next((p for p in (parent, *parent.parents) if p.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise RunError(f"out={str(out)!r}: {str(blocking)!r} is a file, not a folder. Choose "
                       "an out folder whose parents are folders.")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tempfile.mkdtemp(dir=parent, prefix=".convnet-probe-"))
    except OSError as error:
        where = "runs/" if out is None else f"out={str(out)!r}"
        raise RunError(f"{where}: cannot write a run in {str(parent)!r} "
                       f"({error.strerror or error}). Choose a writable out folder.") from None


class StagedDir:
    """A hidden sibling folder that becomes ``final`` only when everything is written.

    >>> with StagedDir(Path("runs/a")) as folder:  # doctest: +SKIP
    ...     write_json(folder / "model.json", {})
    """

    def __init__(self, final: Path):
        self.final = Path(final)
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(dir=self.final.parent,
                                          prefix=f".{self.final.name}.", suffix=".partial"))
        os.chmod(self.path, 0o777 & ~umask())

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, kind, error, trace) -> None:
        if kind is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            return
        # Another process may have put a run at ``final`` while this one was written (two
        # trainings with one --out, or two automatic names in one second): this run then
        # takes the next free name, ``final-2``..., and ``final`` says where it went.
        # rename(2) replaces an empty folder (one the user made for --out) atomically and
        # refuses a non-empty one, so no run is ever written over another.
        for number in range(1, 1000):
            target = self.final if number == 1 else \
                self.final.with_name(f"{self.final.name}-{number}")
            try:
                os.rename(self.path, target)
            except OSError as clash:
                if clash.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR):
                    raise
                continue
            self.final = target
            return
        raise RunError(f"{self.final} and its next 998 numbered names are all taken; the "
                       f"finished run is kept at {self.path}.")
