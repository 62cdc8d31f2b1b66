"""Prediction under torchrun: every rank predicts one contiguous part of the files, and
rank 0 gets every answer back in input order (one output, not one per process)."""

from __future__ import annotations

from pathlib import Path

import torch

from convnet.runs.predictor import Prediction, Predictor
from convnet.runs.run import Run
from convnet.training.distributed import gather, join, part, world


def predict_files(run: Run, paths: list[str | Path], predictor: Predictor | None = None,
                  unknown: float | None = None) -> list[Prediction] | None:
    """`Run.predict_files`, split over the processes of a torchrun; the full list in input
    order on rank 0, None on the other ranks (one process: the list, as usual)."""
    here = join(torch.device("cpu"))
    if not here.active:
        return run.predict_files(paths, predictor, unknown)
    mine = part(len(paths), here.rank, here.size)
    parts = gather(run.predict_files(paths[mine.start:mine.stop], predictor, unknown))
    return [answer for part in parts for answer in part] if world().primary else None
