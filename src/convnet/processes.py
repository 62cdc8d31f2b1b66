"""Whether a process that wrote its id somewhere still runs. A process id alone is not
enough: once the process ends, the system may give its id to a later one, so a process is
named by its id and its start time (clock ticks since boot, from /proc)."""

from __future__ import annotations

import os
from pathlib import Path


def started(pid: int) -> str | None:
    """When process ``pid`` started, as /proc gives it; None where unknown (no /proc, no
    such process)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def alive(pid: int | None, start: str | None = None) -> bool:
    """Whether process ``pid`` runs, and is the one that started at ``start`` (when given
    and known): a later process that reuses the id does not count.

    >>> alive(os.getpid(), started(os.getpid()))
    True
    """
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    now = started(pid)
    return not (start and now and now != start)
