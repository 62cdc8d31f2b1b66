"""What the machine has to spare: memory on a device and space on a disk, and how to say
an amount in words. Used to refuse a size before work starts, not after the system kills
the process."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import torch


def available_bytes(device: torch.device | str = "cpu") -> int | None:
    """Memory a new allocation on ``device`` can still take, or None where unknown."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def free_disk(path: Path) -> int:
    """Free bytes on the file system that holds ``path`` (an existing folder)."""
    return shutil.disk_usage(path).free


def human(count: float) -> str:
    """Bytes as ``'1.2 GB'``."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if count < 1000:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} PB"


def process_started() -> float:
    """When this process started, on the `time.perf_counter` clock (Linux: from /proc;
    elsewhere: now), so that a time budget can count the interpreter's start-up."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # field 22 of stat: start time after boot, in clock ticks
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        age = uptime - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        age = 0.0
    return time.perf_counter() - max(0.0, age)
