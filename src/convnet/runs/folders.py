"""Run folders: where a new run goes, claimed atomically when training starts, so that no
run replaces another, a failed run leaves nothing behind and an interrupted one stays
findable."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from convnet.atomic import umask, write_json
from convnet.errors import RunError
from convnet.processes import alive, started


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
    if out.is_dir() and abandoned(out):
        return  # a run that stopped before its first checkpoint: nothing in it to keep
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


# the files of a finished run (`convnet.runs.format` writes and reads them)
WEIGHTS, META, METRICS = "model.safetensors", "model.json", "metrics.csv"
DATA_REPORT = "data_report.json"  # folder data: what the scan skipped and why
CLAIM = ".convnet-training"  # in a run folder while a process trains into it
START = "start.json"  # the run's resolved settings, written when its folder is claimed
FRESH_SECONDS = 10  # a claim without its process id yet is taken as live for this long


def _claimant() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": started(os.getpid())}


def claim_holder(folder: Path) -> dict[str, Any] | None:
    """The live process that holds ``folder``'s claim, or None when nothing does: no claim,
    an empty one (written by convnet before claims named their process), or one whose
    process is gone. A claim from another host is taken as live (it cannot be checked)."""
    path = folder / CLAIM
    try:
        holder = json.loads(path.read_text())
        pid = int(holder["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        try:  # a claim being written this instant reads empty: live for a while
            fresh = time.time() - path.stat().st_mtime < FRESH_SECONDS
        except OSError:
            fresh = False
        return {"pid": "?", "host": "?"} if fresh else None
    if holder.get("host") != socket.gethostname():
        return holder
    return holder if alive(pid, holder.get("started")) else None  # gone, or its id reused


def check_not_held(folder: Path) -> None:
    """Raises RunError while another live process holds ``folder``'s claim (a claim this
    process left, on a run it resumes, does not count)."""
    holder = claim_holder(folder)
    if holder is None or (holder.get("pid") == os.getpid()
                          and holder.get("host") == socket.gethostname()):
        return
    raise RunError(f"{folder} is still being trained by process {holder.get('pid')} on "
                   f"{holder.get('host')}; resume it once that process has stopped (or stop "
                   "it first).")


def abandoned(folder: Path) -> bool:
    """Whether ``folder`` is a run that stopped before its first checkpoint: it holds only
    a claim whose process is gone (and the settings written with it)."""
    names = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    return bool(names) and names <= {CLAIM, START} and claim_holder(folder) is None


def start_settings(folder: Path) -> dict[str, Any] | None:
    """The settings a run wrote when it claimed ``folder``, or None."""
    try:
        settings = json.loads((folder / START).read_text())
    except (OSError, ValueError):
        return None
    return settings if isinstance(settings, dict) else None


class RunFolder:
    """The folder of a run being trained, claimed under its final name when training starts.

    Claiming is atomic (``mkdir``, or an exclusive marker file in an empty folder the user
    made), so two processes never share a folder and no run is written over another. The
    claim names its process, so a claim whose process is gone blocks nothing. An
    interrupted run stays there, findable and resumable, with its checkpoint, or with its
    settings (`START`) when it stopped before the first one; a run that fails leaves
    nothing behind.
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
                if _write_claim(target):
                    return cls(target)
                raise FileExistsError  # claimed by a racer between mkdir and now
            except FileExistsError:
                if _claim_empty(target):
                    return cls(target)
                if not automatic:
                    _check_new(target)  # says what is there
                    raise RunError(f"out={str(target)!r} is being written by another "
                                   "training run. Choose a new out folder.") from None
        raise RunError(f"{wanted} and its next 998 numbered names are all taken.")

    @classmethod
    def reclaim(cls, folder: Path) -> RunFolder:
        """Claim an unfinished run's folder again, to resume it.

        Raises:
            RunError: while the process that holds it is still training.
        """
        check_not_held(folder)
        write_json(folder / CLAIM, _claimant())
        return cls(folder)

    def write_start(self, settings: dict[str, Any]) -> None:
        """Record the resolved settings, so that a run killed before its first checkpoint
        can be listed and started again as it was."""
        write_json(self.path / START, settings)

    def leave(self) -> None:
        """This process stops training into the folder and leaves it resumable."""
        (self.path / CLAIM).unlink(missing_ok=True)

    def release(self) -> None:
        """The run is finished: drop the claim and the start settings."""
        (self.path / START).unlink(missing_ok=True)
        (self.path / CLAIM).unlink(missing_ok=True)

    def discard(self) -> None:
        """Remove the folder: the run failed and nothing in it can be resumed."""
        shutil.rmtree(self.path, ignore_errors=True)


def _claim_empty(folder: Path) -> bool:
    """Claim a folder that exists but holds nothing (made for ``--out`` beforehand), or
    one that a run left before its first checkpoint (its claim's process is gone)."""
    if not folder.is_dir():
        return False
    if abandoned(folder):
        (folder / START).unlink(missing_ok=True)
        (folder / CLAIM).unlink(missing_ok=True)  # lost to a racing claimant: it wins below
    return not any(folder.iterdir()) and _write_claim(folder)


def _write_claim(folder: Path) -> bool:
    """Create the claim exclusively; False if another process made it first."""
    try:
        with open(folder / CLAIM, "x") as file:
            file.write(json.dumps(_claimant()))  # one small write: readers see all or none
        return True
    except FileExistsError:
        return False
