"""Run folders under concurrency: claimed atomically, so a run never lands on another."""

from __future__ import annotations

import json
import multiprocessing
import os
import time

import pytest

from conftest import TINY_ARCH, TINY_DATA
from convnet.errors import RunError
from convnet.runs.folders import CLAIM, START, RunFolder, abandoned, claim_holder
from datasets_helpers import train_into


def test_an_automatic_name_taken_moves_on_and_a_named_one_is_refused(tmp_path):
    wanted = tmp_path / "run"
    first = RunFolder.claim(wanted, automatic=True)
    second = RunFolder.claim(wanted, automatic=True)
    assert (first.path, second.path) == (wanted, tmp_path / "run-2")
    with pytest.raises(RunError, match="already exists and is not empty"):
        RunFolder.claim(wanted, automatic=False)


def test_an_empty_folder_made_for_the_run_is_claimed_once(tmp_path):
    wanted = tmp_path / "run"
    wanted.mkdir()
    assert RunFolder.claim(wanted, automatic=False).path == wanted
    with pytest.raises(RunError, match="already exists and is not empty"):
        RunFolder.claim(wanted, automatic=False)


def test_two_trainings_with_one_out_both_finish_and_neither_is_lost(tmp_path):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    out = tmp_path / "run"
    options = {"data": TINY_DATA, "arch": TINY_ARCH, "epochs": 1, "batch_size": 16}
    workers = [context.Process(target=train_into, args=(str(out), options, queue))
               for _ in range(2)]
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=180) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    # one claims out; the other is refused before it trains (nothing lost)
    saved = [result for result in results if not result.startswith("error:")]
    refused = [result for result in results if result.startswith("error:")]
    assert saved == [str(out)] and len(refused) == 1
    assert "already exists and is not empty" in refused[0] or \
        "is being written by another training run" in refused[0]
    for folder in saved:
        record = json.loads((tmp_path / folder.rsplit("/", 1)[1] / "model.json").read_text())
        assert record["classes"] == ["x", "not-x"]


def test_a_claim_without_its_process_yet_is_live_only_while_fresh(tmp_path):
    """An empty claim is what a claimant leaves for an instant before writing its pid (and
    what convnet wrote before claims named their process): live while fresh, stale after."""
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / CLAIM).touch()
    (folder / START).write_text("{}")
    assert claim_holder(folder) is not None and not abandoned(folder)
    old = time.time() - 3600
    os.utime(folder / CLAIM, (old, old))
    assert claim_holder(folder) is None and abandoned(folder)
    assert RunFolder.claim(folder, automatic=False).path == folder  # taken over
