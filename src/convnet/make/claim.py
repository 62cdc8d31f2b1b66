"""The run's folder while it trains: claimed (or reclaimed, to resume) by the primary
process, named to every rank, and on failure either discarded (a new run that wrote nothing
worth keeping) or left resumable (a run with a checkpoint, or stopped on purpose)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from convnet.errors import ConvnetError, DiskFull, Interrupted
from convnet.runs.folders import RunFolder
from convnet.training import checkpoint
from convnet.training.distributed import broadcast, world


def claim(wanted: Callable[[], Path], automatic: bool, info: dict[str, Any]) -> RunFolder:
    """A new run's folder (``wanted()``, asked by the primary process alone), claimed with
    its start record written (nothing is left behind if that fails) and named to every
    rank."""
    folder = RunFolder.claim(wanted(), automatic) if world().primary else None
    if folder is not None:
        try:
            folder.write_start(info)
        except BaseException:
            folder.discard()  # nothing else is in it yet
            raise
    return RunFolder(Path(broadcast(str(folder.path) if folder else None)))


def reclaim(path: Path) -> RunFolder:
    """An interrupted run's folder, held again by the primary process."""
    return RunFolder.reclaim(path) if world().primary else RunFolder(path)


def leave(folder: RunFolder) -> None:
    """Let go of the folder as it stands (resumable)."""
    if world().primary:
        folder.leave()


@contextlib.contextmanager
def guarded(folder: RunFolder, new: bool) -> Iterator[None]:
    """Training in ``folder``: what a failure leaves there. A stop (signal, second Ctrl-C,
    a full disk) leaves it resumable; a failed ``new`` run without a checkpoint leaves
    nothing."""
    try:
        yield
    except Interrupted as stop:
        stop.folder = str(folder.path)
        leave(folder)
        raise
    except DiskFull as full:  # the run stays resumable from its last checkpoint, or start
        leave(folder)
        raise DiskFull(f"{full} Training stopped; free some space, then resume with: "
                       f"convnet train --resume {folder.path}", full.folder,
                       full.needed) from None
    except KeyboardInterrupt:  # a second Ctrl-C: the folder stays resumable as it stands
        leave(folder)
        raise
    except BaseException as error:
        gone = isinstance(error, ConvnetError) or not checkpoint.exists(folder.path)
        if new and world().primary and gone:
            folder.discard()  # a failed new run leaves nothing behind
        else:
            leave(folder)
        raise
