"""End to end on real photos: a subset of the shared CIFAR-10 JPEG folder."""

from __future__ import annotations

import tarfile
from collections import Counter
from pathlib import Path

import pytest

import convnet
from convnet.cli import main

ARCHIVE = Path(__file__).resolve().parents[3] / "shared" / "data" / "cifar10-jpg.tar.gz"
PER_CLASS = {"train": 24, "test": 6}


@pytest.fixture(scope="module")
def cifar_subset(tmp_path_factory) -> Path:
    if not ARCHIVE.is_file():
        pytest.skip(f"{ARCHIVE} is not on this machine")
    root = tmp_path_factory.mktemp("cifar")
    taken: Counter[tuple[str, str]] = Counter()
    with tarfile.open(ARCHIVE) as tar:
        for member in tar:
            parts = Path(member.name).parts
            if not member.isfile() or len(parts) != 3:
                continue
            key = (parts[0], parts[1])
            if taken[key] < PER_CLASS[parts[0]]:
                taken[key] += 1
                tar.extract(member, root, filter="data")
            if len(taken) == 20 and all(taken[k] >= PER_CLASS[k[0]] for k in taken):
                break
    return root


def test_cifar_jpeg_subset_trains_evaluates_and_predicts(cifar_subset, tmp_path, monkeypatch,
                                                         capsys):
    monkeypatch.setenv("CONVNET_CACHE", str(tmp_path / "cache"))
    result = convnet.train(data=str(cifar_subset), arch="small", epochs=2, batch_size=32,
                           out=tmp_path / "run")
    run = result.run
    assert run.classes == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                           "horse", "ship", "truck"]
    assert run.meta["preprocess"] == {"height": 32, "width": 32, "channels": 3,
                                      "resize": "crop"}
    assert run.meta["data"]["skipped"] == [] and run.meta["augment"]["flip"] is True
    assert result.test.count == 60 and result.data_seconds > 0
    assert main(["evaluate", str(tmp_path / "run")]) == 0
    assert "balanced accuracy" in capsys.readouterr().out
    photo = next((cifar_subset / "test" / "ship").iterdir())
    [prediction] = run.predict_files([photo])
    assert set(prediction.probabilities) == set(run.classes)
