"""Run folders under concurrency: a run never lands on another, and is never lost."""

from __future__ import annotations

import json
import multiprocessing

from conftest import TINY_ARCH, TINY_DATA
from convnet.runs.folders import StagedDir
from datasets_helpers import train_into


def test_a_run_that_finds_its_folder_taken_takes_the_next_name(tmp_path):
    final = tmp_path / "run"
    staged = StagedDir(final)
    with staged as folder:
        (folder / "model.json").write_text("mine")
        final.mkdir()  # meanwhile another process finishes its run there
        (final / "model.json").write_text("theirs")
    assert (final / "model.json").read_text() == "theirs"
    assert staged.final == tmp_path / "run-2"
    assert (tmp_path / "run-2" / "model.json").read_text() == "mine"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_an_empty_folder_made_for_the_run_is_replaced(tmp_path):
    final = tmp_path / "run"
    final.mkdir()
    staged = StagedDir(final)
    with staged as folder:
        (folder / "model.json").write_text("mine")
    assert staged.final == final and (final / "model.json").read_text() == "mine"


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
    # both trained at once: one at out, one at out-2; or the second started after the
    # first had finished and was refused up front (nothing trained, nothing lost)
    saved = sorted(result for result in results if not result.startswith("error:"))
    refused = [result for result in results if result.startswith("error:")]
    assert saved in ([str(out), str(tmp_path / "run-2")], [str(out)])
    assert len(saved) + len(refused) == 2
    assert all("already exists and is not empty" in line for line in refused)
    for folder in saved:
        record = json.loads((tmp_path / folder.rsplit("/", 1)[1] / "model.json").read_text())
        assert record["classes"] == ["x", "not-x"]
