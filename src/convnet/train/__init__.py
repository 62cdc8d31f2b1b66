"""Training: the config, the resident batches, the training state, the loop, and how a step
runs fast. It knows no run folders (`convnet.runs` writes those): checkpointing and
distributed training attach here, to `TrainState` and `Loop`."""

from convnet.train import checkpoint
from convnet.train.callbacks import Callback, EpochStats, TrainStart
from convnet.train.config import TrainConfig
from convnet.train.loop import Loop
from convnet.train.setup import Prepared, prepare
from convnet.train.state import TrainState

__all__ = ["Callback", "EpochStats", "Loop", "Prepared", "TrainConfig", "TrainStart",
           "TrainState", "checkpoint", "prepare"]
