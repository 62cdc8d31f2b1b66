"""Cleaning data with a trained network: suspected label errors ranked from out-of-fold
probabilities, and a relabelled copy of the folder."""

from convnet.lazy import lazy_exports

# the suspects' choices, here so that the command line reads them without importing torch
FOLDS = 4
METHODS = ("auto", "cnn", "imagenet")

__getattr__, __dir__ = lazy_exports(__name__, {
    "Suspect": "convnet.clean.suspects",
    "Suspects": "convnet.clean.suspects",
    "find_suspects": "convnet.clean.suspects",
})

__all__ = ["Suspect", "Suspects", "find_suspects"]
