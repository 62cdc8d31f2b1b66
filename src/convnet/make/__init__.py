"""Making a run: resolve it (`convnet.plan.resolve`), claim its folder, train, score the
test split and write the run; resume an interrupted one; log to TensorBoard or MLflow."""

from convnet.make.create import fit, train
from convnet.make.write import TrainResult

__all__ = ["TrainResult", "fit", "train"]
