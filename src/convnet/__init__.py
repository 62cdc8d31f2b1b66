"""convnet: build, train, inspect and serve convolutional neural networks for images.

>>> import convnet
>>> net = convnet.build("conv32k3-relu-maxpool2-fc", "28x28x1", num_classes=10)
>>> result = convnet.train(data="shapes", epochs=2)            # doctest: +SKIP
>>> convnet.load(result.path).predict_files(["cat.png"])       # doctest: +SKIP

The package is built in stages that import one way only (docs/ARCHITECTURE.md):
network, data -> train -> runs -> explain -> cli.
"""

from convnet import data
from convnet._version import __version__
from convnet.errors import ConvnetError, RunError, SpecError
from convnet.make import TrainResult, train
from convnet.network import Network, build, format_spec, parse_spec, summarize
from convnet.runs import Run, list_runs, load
from convnet.training import TrainConfig, callbacks

datasets = data  # the public name since 0.1: convnet.datasets.load("digits")

__all__ = [
    "ConvnetError", "Network", "Run", "RunError", "SpecError", "TrainConfig", "TrainResult",
    "__version__", "build", "callbacks", "data", "datasets", "format_spec", "list_runs", "load",
    "parse_spec", "summarize", "train",
]
