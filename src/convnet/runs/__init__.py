"""Runs, the artifact: the run format, run folders and their listing, loading a run (`load`),
the built-in ``imagenet`` run, and the one inference path (`Predictor`) that predict,
evaluate, the report, export and serving share. Making a run is `convnet.make`'s."""

from convnet.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "Evaluation": "convnet.runs.evaluate",
    "RunRecord": "convnet.runs.format",
    "read_run": "convnet.runs.format",
    "RunSummary": "convnet.runs.listing",
    "list_runs": "convnet.runs.listing",
    "Prediction": "convnet.runs.predictor",
    "Predictor": "convnet.runs.predictor",
    "Run": "convnet.runs.run",
    "load": "convnet.runs.run",
})

__all__ = ["Evaluation", "Prediction", "Predictor", "Run", "RunRecord", "RunSummary",
           "list_runs", "load", "read_run"]
