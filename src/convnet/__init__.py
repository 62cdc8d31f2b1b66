"""convnet: build, train, inspect and serve convolutional neural networks for images.

>>> import convnet
>>> net = convnet.build("conv32k3-relu-maxpool2-fc", "28x28x1", num_classes=10)
>>> result = convnet.train(data="shapes", epochs=2)            # doctest: +SKIP
>>> convnet.load(result.path).predict_files(["cat.png"])       # doctest: +SKIP
"""

__version__ = "0.1.0"

from convnet import callbacks, datasets  # noqa: E402
from convnet.config import TrainConfig  # noqa: E402
from convnet.errors import ConvnetError, RunError, SpecError  # noqa: E402
from convnet.model import Network, build  # noqa: E402
from convnet.run import Run, load  # noqa: E402
from convnet.spec import format_spec, parse_spec  # noqa: E402
from convnet.summary import summarize  # noqa: E402
from convnet.train import TrainResult, train  # noqa: E402

__all__ = [
    "ConvnetError", "Network", "Run", "RunError", "SpecError", "TrainConfig", "TrainResult",
    "build", "callbacks", "datasets", "format_spec", "load", "parse_spec", "summarize", "train",
]
