"""Making a run: resolve it (`convnet.plan.resolve`), claim its folder, train, score the
test split and write the run; resume an interrupted one; log to TensorBoard or MLflow."""

from convnet.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "fit": "convnet.make.create",
    "train": "convnet.make.create",
    "TrainResult": "convnet.make.write",
})

__all__ = ["TrainResult", "fit", "train"]
