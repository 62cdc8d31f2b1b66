"""convnet: build, train, inspect and serve convolutional neural networks for images.

>>> import convnet
>>> net = convnet.build("conv32k3-relu-maxpool2-fc", "28x28x1", num_classes=10)
>>> result = convnet.train(data="shapes", epochs=2)            # doctest: +SKIP
>>> convnet.load(result.path).predict_files(["cat.png"])       # doctest: +SKIP

The package is built in stages that import one way only (docs/ARCHITECTURE.md):
network, data -> training -> features -> runs -> plan -> make -> clean -> explain,
export -> serve -> studio -> cli.
"""

from convnet._version import __version__
from convnet.errors import ConvnetError, RunError, SpecError
from convnet.lazy import lazy_exports

# imported on first use, so that `import convnet` (and `convnet --help`) stays light
__getattr__, __dir__ = lazy_exports(__name__, {
    "data": "convnet.data:*",
    "datasets": "convnet.data:*",  # the public name since 0.1: convnet.datasets.load("digits")
    "callbacks": "convnet.training.callbacks:*",
    "TrainConfig": "convnet.training.config",
    "Network": "convnet.network.model",
    "build": "convnet.network.model",
    "format_spec": "convnet.network.spec",
    "parse_spec": "convnet.network.spec",
    "summarize": "convnet.network.summary",
    "TrainResult": "convnet.make.write",
    "train": "convnet.make.create",
    "Run": "convnet.runs.run",
    "load": "convnet.runs.run",
    "list_runs": "convnet.runs.listing",
    "show": "convnet.display",
    # the stages, as `convnet.runs.load` or `convnet.plan.preview` read them
    **{stage: f"convnet.{stage}:*" for stage in (
        "network", "training", "features", "runs", "plan", "make", "clean", "explain",
        "export", "serve", "studio")},
})

__all__ = [
    "ConvnetError", "Network", "Run", "RunError", "SpecError", "TrainConfig", "TrainResult",
    "__version__", "build", "callbacks", "data", "datasets", "format_spec", "list_runs", "load",
    "parse_spec", "show", "summarize", "train",
]
