"""Export: a finished run as a file other runtimes run (ONNX), with its preprocessing and
softmax inside, kept only once it is proven to give the run's own probabilities.

At the `explain` level: it reads runs and uses their one inference path for the parity
check; nothing below imports it.
"""

from convnet.export.onnx_model import Exported, Parity, check_parity, export_onnx
from convnet.export.runtime import OnnxPredictor, metadata

__all__ = ["Exported", "OnnxPredictor", "Parity", "check_parity", "export_onnx", "metadata"]
