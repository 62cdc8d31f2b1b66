"""Scoring under torchrun: two gloo processes, each scoring its part of a split whose size
does not divide by two, give exactly one process's confusion matrix (no image scored twice,
none padded in) and its log loss."""

from __future__ import annotations

import json

import torch
import torch.multiprocessing as mp

import convnet
from conftest import free_port
from datasets_helpers import sharded_evaluation

COUNT = 19  # odd: the two parts differ by one image


def test_two_processes_score_a_split_exactly_as_one(tiny_run, tmp_path):
    port = free_port()
    out = tmp_path / "scores.json"
    mp.spawn(sharded_evaluation, args=(2, str(tiny_run), COUNT, port, str(out)), nprocs=2,
             join=True)
    found = json.loads(out.read_text())
    run = convnet.load(tiny_run)
    split, _ = run.labelled()
    expected = run.evaluate(split.subset(torch.arange(COUNT)))
    assert found["confusion"] == expected.confusion.tolist()
    assert sum(map(sum, found["confusion"])) == COUNT
    assert abs(found["loss"] - expected.loss) < 1e-6
