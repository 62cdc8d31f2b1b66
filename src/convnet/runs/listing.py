"""What runs a folder holds, finished or not: read from model.json or the checkpoint's JSON,
never from the weights, so listing many runs stays fast."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from convnet.errors import ConvnetError
from convnet.runs.folders import META, claim_holder, start_settings
from convnet.training import generations


@dataclass(frozen=True)
class RunSummary:
    path: Path
    finished: bool
    data: str
    arch: str
    epochs: int  # planned
    # "finished", "unfinished at epoch 3 step 120", "training, at epoch 3 step 120",
    # "stopped before its first checkpoint"
    state: str
    accuracy: float | None  # test accuracy, else validation accuracy, of the kept epoch
    scored_on: str | None  # "test" or "val"


def _finished(folder: Path) -> RunSummary | None:
    try:
        meta = json.loads((folder / META).read_text())
        test = (meta.get("metrics") or {}).get("test") or {}
        val = (meta.get("metrics") or {}).get("val_acc")
        accuracy, scored = (test["accuracy"], "test") if "accuracy" in test else \
            (val, "val" if val is not None else None)
        return RunSummary(folder, True, meta["data"]["name"], meta["arch"],
                          meta["config"]["epochs"], "finished", accuracy, scored)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # not a run this version can read; `convnet load` says why


def _unfinished(folder: Path) -> RunSummary | None:
    info = generations.info(folder)
    live = claim_holder(folder) is not None
    if info is None:
        info = start_settings(folder)
        state = "training, before its first checkpoint" if live else \
            "stopped before its first checkpoint"
    else:
        in_epoch = info.get("in_epoch")
        where = f"epoch {in_epoch[0]} step {in_epoch[1]}" if in_epoch else \
            f"epoch {info['epoch']} (its end)"
        state = f"training, at {where}" if live else f"unfinished at {where}"
    try:
        return RunSummary(folder, False, info["data"], info["arch"], info["config"]["epochs"],
                          state, None, None)
    except (KeyError, TypeError):
        return None  # no checkpoint or settings this version can read


def list_runs(root: str | Path = "runs") -> list[RunSummary]:
    """Every run folder directly under ``root``, oldest first (by folder time).

    Raises:
        ConvnetError: if ``root`` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise ConvnetError(f"{str(root)!r} is not a folder of runs. Give the folder that "
                           "holds run folders (runs/ by default).")
    found = []
    for folder in sorted((p for p in root.iterdir() if p.is_dir() and
                          not p.name.startswith(".")), key=lambda p: p.stat().st_mtime):
        summary = _finished(folder) if (folder / META).is_file() else _unfinished(folder)
        if summary is not None:
            found.append(summary)
    return found
