"""The model so far, while a run trains: a fine-tune's new head alone as soon as it is
fitted, then the kept epoch's weights each time a better one is kept, each written as a
run folder that `convnet.runs.run.load` reads, so that the studio can answer with it
before the run ends (Teachable Machine answers within seconds; a photo run takes minutes).

The folders are numbered versions under one folder (``1``, ``2``, ...); a version is whole
once its ``model.json`` exists (written last), and the newest whole one is the model so
far. Each also holds ``early.json``: what it is (``after``: "the new head alone",
"epoch 3 of 7"), its validation accuracy and its epoch. It is not calibrated and has no
"unknown" detector: those are fitted on the kept weights once the epochs end.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from convnet.atomic import write_json
from convnet.data.dataset import Dataset
from convnet.make.record import run_record
from convnet.runs.format import META, Metrics, sha256, weights_bytes, write_run
from convnet.training.callbacks import Callback, EpochStats, TrainStart
from convnet.training.config import TrainConfig
from convnet.training.setup import Prepared

INFO = "early.json"


class EarlyModels(Callback):
    """Writes the model so far into numbered versions under ``folder``."""

    def __init__(self, folder: str | Path, run: Prepared, dataset: Dataset,
                 config: TrainConfig):
        self.folder, self.run, self.dataset, self.config = Path(folder), run, dataset, config
        self.epochs = config.epochs

    def on_train_start(self, info: TrainStart) -> None:
        self.epochs = info.epochs
        if info.head_val_acc is not None:  # a fine-tune's head, fitted before epoch 1
            self._write(self.run.network.state_dict(), "the new head alone", 0,
                        info.head_val_acc)

    def on_epochs(self, total: int) -> None:
        self.epochs = total

    def on_epoch_end(self, stats: EpochStats) -> None:
        if self.run.state.best is stats:  # a better epoch was kept
            self._write(self.run.state.best_weights, f"epoch {stats.epoch} of {self.epochs}",
                        stats.epoch, stats.val_acc)

    def _write(self, weights: dict[str, torch.Tensor], after: str, epoch: int,
               val_acc: float | None) -> None:
        data = weights_bytes(weights)
        record = run_record(self.run, self.dataset, self.config, None, sha256(data), None)
        record = replace(record, metrics=Metrics(epoch, val_acc, None, None))
        version = self.folder / str(_newest(self.folder) + 1)
        version.mkdir(parents=True)
        write_json(version / INFO, {"after": after, "val_acc": val_acc, "epoch": epoch})
        write_run(version, record, data)
        for older in self.folder.iterdir():  # whole or not, older versions are done with
            if older.is_dir() and older.name.isdigit() and int(older.name) < int(version.name):
                shutil.rmtree(older, ignore_errors=True)


def _newest(folder: Path, whole: bool = False) -> int:
    """The highest version number under ``folder`` (0: none); ``whole``: of those whose
    model.json exists."""
    if not folder.is_dir():
        return 0
    return max((int(p.name) for p in folder.iterdir() if p.name.isdigit() and p.is_dir()
                and (not whole or (p / META).is_file())), default=0)


def newest(folder: str | Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest whole version under ``folder`` and its ``early.json``, or None."""
    number = _newest(Path(folder), whole=True)
    if not number:
        return None
    version = Path(folder) / str(number)
    try:
        return version, json.loads((version / INFO).read_text())
    except (OSError, ValueError):  # removed while read: a newer one is being written
        return None


__all__ = ["EarlyModels", "newest"]
