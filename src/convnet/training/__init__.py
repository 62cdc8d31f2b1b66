"""Training: the config, the resident batches, the training state, the loop, and how a step
runs fast. It knows no run folders (`convnet.make` writes those) and makes no plans;
checkpointing and distributed training attach here, to `TrainState` and `Loop`."""

from convnet.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "checkpoint": "convnet.training.checkpoint:*",
    "Callback": "convnet.training.callbacks",
    "EpochStats": "convnet.training.callbacks",
    "TrainStart": "convnet.training.callbacks",
    "TrainConfig": "convnet.training.config",
    "Loop": "convnet.training.loop",
    "Prepared": "convnet.training.setup",
    "prepare": "convnet.training.setup",
    "TrainState": "convnet.training.state",
})

__all__ = ["Callback", "EpochStats", "Loop", "Prepared", "TrainConfig", "TrainStart",
           "TrainState", "checkpoint", "prepare"]
