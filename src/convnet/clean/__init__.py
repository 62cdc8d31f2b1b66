"""Cleaning data with a trained network: suspected label errors ranked from out-of-fold
probabilities, and a relabelled copy of the folder."""

from convnet.clean.suspects import Suspect, Suspects, find_suspects

__all__ = ["Suspect", "Suspects", "find_suspects"]
