"""The speed probe measures a few real steps, and a folder's plan, which weighs the chosen
size before decoding and again with the data loaded, measures it only once."""

from __future__ import annotations

import torch

from convnet.train.probe import seconds_per_image


def test_a_measurement_is_positive_and_taken_once_per_process():
    seconds_per_image.cache_clear()
    args = ("conv4k3-relu-gap-fc", (8, 8, 1), 2, 4, torch.device("cpu"), "fp32")
    first = seconds_per_image(*args)
    assert 0 < first < 1 and seconds_per_image(*args) == first
    assert seconds_per_image.cache_info().hits == 1
