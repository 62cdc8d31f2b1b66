"""`convnet compare RUN RUN...`: the settings that differ, the scores side by side, and
the curves of every run overlaid in one PNG."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convnet import plots
from convnet.errors import ConvnetError
from convnet.runs.format import read_metrics, read_run

SCORES = ("test accuracy", "test loss", "best val accuracy", "best epoch", "epochs run",
          "parameters", "epoch seconds")


@dataclass
class Comparison:
    """Runs by name, the settings on which they differ, and their scores."""

    names: list[str]
    settings: dict[str, list[Any]]  # setting -> each run's value (only those that differ)
    scores: dict[str, list[Any]]  # score -> each run's value (None where it has none)
    history: list[list[dict[str, float | None]]]  # each run's per-epoch rows

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["", *self.names])
        for name, values in {**self.settings, **self.scores}.items():
            writer.writerow([name, *("" if v is None else v for v in values)])
        return buffer.getvalue()


def _names(paths: list[Path]) -> list[str]:
    """Folder names, or the whole paths where two folders share a name."""
    names = [p.name for p in paths]
    return names if len(set(names)) == len(names) else [str(p) for p in paths]


def compare(paths: list[str | Path]) -> Comparison:
    """Read the finished runs at ``paths`` (nothing is loaded but their JSON and CSV).

    Raises:
        ConvnetError: for fewer than two runs, or one that is not a finished run.
    """
    folders = [Path(p) for p in paths]
    if len(folders) < 2:
        raise ConvnetError(f"compare needs at least two runs. Received: {len(folders)}.")
    records = [read_run(folder)[0] for folder in folders]
    configs = [{"arch": r.arch, "data": r.data.name, **r.config.to_dict()} for r in records]
    keys = sorted(set().union(*configs))
    settings = {key: [c.get(key) for c in configs] for key in keys
                if len({repr(c.get(key)) for c in configs}) > 1}
    history = [read_metrics(folder) for folder in folders]
    scores: dict[str, list[Any]] = {name: [] for name in SCORES}
    for record, rows in zip(records, history):
        test = record.metrics.test or {}
        for name, value in zip(SCORES, (
                test.get("accuracy"), test.get("loss"), record.metrics.val_acc,
                record.metrics.best_epoch, len(rows), record.params,
                sum(row["seconds"] or 0.0 for row in rows))):
            scores[name].append(_round(value))
    return Comparison(_names(folders), settings, scores, history)


def _round(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def draw(comparison: Comparison, path: Path) -> Path:
    """Training loss and validation accuracy per epoch, one line per run."""
    return plots.compared_curves(comparison.names, comparison.history, Path(path))
