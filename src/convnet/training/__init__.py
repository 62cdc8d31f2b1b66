"""Training: the config, the resident batches, the training state, the loop, and how a step
runs fast. It knows no run folders (`convnet.runs` writes those): checkpointing and
distributed training attach here, to `TrainState` and `Loop`."""

from convnet.training import checkpoint
from convnet.training.callbacks import Callback, EpochStats, TrainStart
from convnet.training.config import TrainConfig
from convnet.training.loop import Loop
from convnet.training.setup import Prepared, prepare
from convnet.training.state import TrainState

__all__ = ["Callback", "EpochStats", "Loop", "Prepared", "TrainConfig", "TrainStart",
           "TrainState", "checkpoint", "prepare"]
