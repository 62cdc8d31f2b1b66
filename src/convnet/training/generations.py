"""Which checkpoints a run folder holds: the numbered pairs ``checkpoint.N.safetensors`` and
``checkpoint.N.json`` (`convnet.training.checkpoint` writes and reads them), and the newest
one's JSON info, read without its tensors and without torch, so that listing runs stays
light."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def numbers(folder: Path) -> list[int]:
    """Numbers of the checkpoint files in ``folder``, newest first."""
    found = set()
    for path in folder.glob("checkpoint.*.json"):
        middle = path.name[len("checkpoint."):-len(".json")]
        if middle.isdigit():
            found.add(int(middle))
    return sorted(found, reverse=True)


def names(number: int) -> tuple[str, str]:
    return f"checkpoint.{number}.safetensors", f"checkpoint.{number}.json"


def exists(folder: Path) -> bool:
    return bool(numbers(folder))


def info(folder: Path) -> dict[str, Any] | None:
    """The newest checkpoint's info without its tensors (for listings), or None."""
    for number in numbers(folder):
        try:
            return json.loads((folder / names(number)[1]).read_text())["info"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None
