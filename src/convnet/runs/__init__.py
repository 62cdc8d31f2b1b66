"""Runs: the run format, making a run (`train`), loading one (`load`), and the one inference
path (`Predictor`) that predict, evaluate, the report, export and serving share."""

from convnet.runs.create import TrainResult, fit, train
from convnet.runs.evaluate import Evaluation
from convnet.runs.format import RunRecord, read_run
from convnet.runs.listing import RunSummary, list_runs
from convnet.runs.planning import plan
from convnet.runs.predictor import Prediction, Predictor
from convnet.runs.run import Run, load
from convnet.runs.suspects import Suspect, Suspects, find_suspects

__all__ = ["Evaluation", "Prediction", "Predictor", "Run", "RunRecord", "RunSummary",
           "Suspect", "Suspects", "TrainResult", "find_suspects", "fit", "list_runs", "load",
           "plan", "read_run", "train"]
