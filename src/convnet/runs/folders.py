"""Run folders: where a new run goes, claimed atomically when training starts, so that no
run replaces another, a failed run leaves nothing behind and an interrupted one stays
findable."""

from __future__ import annotations

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


CLAIM = ".convnet-training"  # in a run folder while a process trains into it


class RunFolder:
    """The folder of a run being trained, claimed under its final name when training starts.

    Claiming is atomic (``mkdir``, or an exclusive marker file in an empty folder the user
    made), so two processes never share a folder and no run is written over another. An
    interrupted run stays there, findable and resumable, with its checkpoint; a run that
    fails before its first checkpoint is removed, so it leaves nothing behind.
    """

    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def claim(cls, wanted: Path, automatic: bool) -> RunFolder:
        """Claim ``wanted``; an automatic name taken meanwhile moves on to ``-2``, ``-3``...

        Raises:
            RunError: if an ``out`` the user named is taken.
        """
        for number in range(1, 1000):
            target = wanted if number == 1 else wanted.with_name(f"{wanted.name}-{number}")
            try:
                target.mkdir(parents=True)
                os.chmod(target, 0o777 & ~umask())
                (target / CLAIM).touch()
                return cls(target)
            except FileExistsError:
                if _claim_empty(target):
                    return cls(target)
                if not automatic:
                    _check_new(target)  # says what is there
                    raise RunError(f"out={str(target)!r} is being written by another "
                                   "training run. Choose a new out folder.") from None
        raise RunError(f"{wanted} and its next 998 numbered names are all taken.")

    def release(self) -> None:
        """The run is finished: drop the claim."""
        (self.path / CLAIM).unlink(missing_ok=True)

    def discard(self) -> None:
        """Remove the folder: the run failed and nothing in it can be resumed."""
        shutil.rmtree(self.path, ignore_errors=True)


def _claim_empty(folder: Path) -> bool:
    """Claim a folder that exists but holds nothing (made for ``--out`` beforehand)."""
    if not folder.is_dir() or any(p.name != CLAIM for p in folder.iterdir()):
        return False
    try:
        with open(folder / CLAIM, "x"):
            return True
    except FileExistsError:  # another process claimed it first
        return False
