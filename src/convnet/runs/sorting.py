"""Predictions as a CSV, and images sorted into class folders by what the run predicts."""

from __future__ import annotations

import csv
import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from convnet.atomic import unused_path, write_atomic
from convnet.errors import ConvnetError
from convnet.runs.predictor import Prediction

UNKNOWN = "unknown"


def csv_text(results: list[Prediction], classes: list[str],
             where: dict[str, str] | None = None) -> str:
    """One row per image: file, prediction, its probability, every class's, the error;
    with ``where`` (file -> the path it was sorted to), a ``sorted_to`` column too."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    sets = any(r.set is not None for r in results)
    verdicts = any(r.unknown is not None for r in results)
    writer.writerow(["file", "prediction", "probability", *classes, "error",
                     *(["set", "coverage"] if sets else []),
                     *(["unknown", "unknown_score"] if verdicts else []),
                     *(["sorted_to"] if where is not None else [])])
    for r in results:
        probs = r.probabilities or {}
        best = r.top(1)[0] if probs else ("", "")
        writer.writerow([r.path, best[0], f"{best[1]:.6f}" if probs else "",
                         *(f"{probs[c]:.6f}" if probs else "" for c in classes),
                         r.error or "",
                         *(["|".join(r.set or []), r.coverage or ""] if sets else []),
                         *([_flag(r.unknown), "" if r.unknown_score is None else
                            r.unknown_score] if verdicts else []),
                         *([where.get(r.path, "")] if where is not None else [])])
    return buffer.getvalue()


def _flag(value: bool | None) -> str:
    return "" if value is None else "yes" if value else "no"


@dataclass(frozen=True)
class Sorted:
    """What `sort_into` did: per folder name, how many images; the CSV it wrote."""

    counts: dict[str, int]
    skipped: int  # images that could not be read (in the CSV, not copied)
    csv: Path


def sort_into(results: list[Prediction], classes: list[str], out: Path,
              unknown_below: float = 0.0, link: bool = False) -> Sorted:
    """Copy (or symlink) each predicted image into ``out/<class>/``, those whose top
    probability is under ``unknown_below`` into ``out/unknown/``, and write
    ``out/predictions.csv``. No file in ``out`` is ever replaced: a name taken gets
    ``-2``, ``-3``... .

    Raises:
        ConvnetError: for ``unknown_below`` outside [0, 1] or ``out`` that is a file.
    """
    if not 0.0 <= unknown_below <= 1.0:
        raise ConvnetError(f"unknown_below must be a probability in [0, 1]. Received: "
                           f"unknown_below={unknown_below}.")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConvnetError(f"sort_into={str(out)!r} is a file; give a folder (new or not).")
    counts: dict[str, int] = {}
    where: dict[str, str] = {}
    for result in results:
        if result.error or not result.probabilities:
            continue
        name, probability = result.top(1)[0]
        # the run's "unknown" verdict, or a top probability under the bar asked for
        folder = UNKNOWN if result.unknown or probability < unknown_below else \
            _folder_name(name)
        target = unused_path(out / folder / Path(result.path).name)
        target.parent.mkdir(parents=True, exist_ok=True)
        if link:
            os.symlink(Path(result.path).resolve(), target)
        else:
            shutil.copy2(result.path, target)
        counts[folder] = counts.get(folder, 0) + 1
        where[result.path] = str(target)
    table = unused_path(out / "predictions.csv")
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(table, csv_text(results, classes, where).encode())
    return Sorted(counts, sum(1 for r in results if r.error), table)


def _folder_name(name: str) -> str:
    """A class name as one folder name: separators and leading dots made safe."""
    cleaned = name.replace("/", "_").replace("\\", "_").lstrip(".").strip()
    return cleaned if cleaned and cleaned != UNKNOWN else f"{cleaned or 'class'}_"

