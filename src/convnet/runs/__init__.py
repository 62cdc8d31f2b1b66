"""Runs, the artifact: the run format, run folders and their listing, loading a run (`load`),
the built-in ``imagenet`` run, and the one inference path (`Predictor`) that predict,
evaluate, the report, export and serving share. Making a run is `convnet.make`'s."""

from convnet.runs.evaluate import Evaluation
from convnet.runs.format import RunRecord, read_run
from convnet.runs.listing import RunSummary, list_runs
from convnet.runs.predictor import Prediction, Predictor
from convnet.runs.run import Run, load

__all__ = ["Evaluation", "Prediction", "Predictor", "Run", "RunRecord", "RunSummary",
           "list_runs", "load", "read_run"]
