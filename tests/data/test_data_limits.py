"""Folder data at the limits: sizes nothing could hold are refused with the figures before
any decoding, and the cache never keeps a half-written entry."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
import torch

from convnet.data.folders import load_folder
from convnet.errors import ConvnetError
from convnet.resources import human
from datasets_helpers import good_class, load_and_sum


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVNET_CACHE", str(tmp_path / "cache"))


def _two_classes(root: Path, count: int = 3) -> Path:
    good_class(root / "cat", "cat", count)
    good_class(root / "dog", "dog", count)
    return root


def test_an_absurd_image_size_is_refused_with_the_figure_and_writes_nothing(tmp_path):
    data = _two_classes(tmp_path / "d")
    with pytest.raises(ConvnetError) as caught:
        load_folder(data, image_size=1_000_000)
    message = str(caught.value)
    assert message.startswith("6 images at 1000000×1000000×3 take 18.0 TB decoded, and "
                              "there is only ")
    assert message.endswith("Use a smaller image_size, e.g. image_size=128, or free some "
                            "space.")
    decoded = tmp_path / "cache" / "decoded"
    assert not decoded.exists() or not any(decoded.iterdir())


def test_human_sizes():
    assert [human(n) for n in (999, 1000, 1_500_000, 2.5e12, 7e15)] == \
        ["999 B", "1.0 KB", "1.5 MB", "2.5 TB", "7.0 PB"]


def test_a_stale_partial_entry_from_a_killed_process_is_removed(tmp_path):
    data = _two_classes(tmp_path / "d")
    first = load_folder(data)  # creates the entry; now fake a crash of a second decoder
    decoded = tmp_path / "cache" / "decoded"
    key = next(p.name for p in decoded.iterdir() if p.is_dir() and not p.name.startswith("."))
    stale = decoded / f".{key}.abc123.partial"
    stale.mkdir()
    (stale / "images.npy").write_bytes(b"\0" * 1024)
    (decoded / key / "index.json").unlink()  # the entry must be rebuilt, under the lock
    again = load_folder(data)
    assert not stale.exists()
    assert torch.equal(first.train.images, again.train.images)


def test_two_processes_decoding_one_folder_agree_and_leave_one_entry(tmp_path):
    data = _two_classes(tmp_path / "d", count=20)
    context = multiprocessing.get_context("spawn")  # the cache path comes from the env
    queue = context.Queue()
    workers = [context.Process(target=load_and_sum, args=(str(data), queue)) for _ in range(2)]
    for worker in workers:
        worker.start()
    sums = [queue.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert sums[0] == sums[1] == load_folder(data).train.images.sum().item()
    decoded = tmp_path / "cache" / "decoded"
    entries = [p for p in decoded.iterdir() if p.is_dir()]
    assert len(entries) == 1 and not entries[0].name.startswith(".")
