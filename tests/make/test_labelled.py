"""`evaluate` on any labelled images of the run's classes: its own held-out images when
its data has no test split, a folder with only test/, a folder of some of the classes."""

from __future__ import annotations

import pytest
from PIL import Image

import convnet
from convnet.cli import main
from convnet.errors import ConvnetError

COLOURS = {"blue": (20, 20, 250), "red": (250, 20, 20)}


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVNET_CACHE", str(tmp_path / "cache"))


def _images(folder, colour, count):
    folder.mkdir(parents=True)
    for n in range(count):
        Image.new("RGB", (10, 10), tuple(max(0, c - 3 * n) for c in colour)).save(
            folder / f"{n}.png")


@pytest.fixture
def colour_run(tmp_path):
    for name, colour in COLOURS.items():
        _images(tmp_path / "colours" / name, colour, 10)
    convnet.train(data=str(tmp_path / "colours"), arch="conv4k3-relu-fc", epochs=1,
                  out=tmp_path / "run")
    return tmp_path / "run"


def test_without_a_test_split_the_held_out_images_are_scored(colour_run, capsys):
    run = convnet.load(colour_run)
    split, what = run.labelled()
    assert what == "colours validation images (held out in training)"
    assert len(split) == run.record.validation.count == 4  # 20% of each class of 10 (few)
    assert main(["evaluate", str(colour_run)]) == 0
    assert "on colours validation images (held out in training): accuracy" in \
        capsys.readouterr().out


def test_a_folder_with_only_test_and_one_class_is_scored_by_class_name(colour_run, tmp_path,
                                                                        capsys):
    _images(tmp_path / "new" / "test" / "red", COLOURS["red"], 3)
    run = convnet.load(colour_run)
    split, what = run.labelled(tmp_path / "new")
    assert what == "new test/" and split.labels.tolist() == [run.classes.index("red")] * 3
    evaluation = run.evaluate(split)
    assert evaluation.count == 3
    assert evaluation.support.tolist() == [0 if name != "red" else 3 for name in run.classes]
    assert main(["evaluate", str(colour_run), "--data", str(tmp_path / "new")]) == 0
    assert "on new test/: accuracy" in capsys.readouterr().out


def test_a_flat_folder_is_scored_whole_and_an_unknown_class_is_named(colour_run, tmp_path):
    _images(tmp_path / "flat" / "blue", COLOURS["blue"], 2)
    _images(tmp_path / "flat" / "red", COLOURS["red"], 2)
    split, what = convnet.load(colour_run).labelled(tmp_path / "flat")
    assert what == "flat (every image)" and len(split) == 4
    _images(tmp_path / "flat" / "green", (20, 250, 20), 1)
    with pytest.raises(ConvnetError, match="has class\\(es\\) green that the run does not know"):
        convnet.load(colour_run).labelled(tmp_path / "flat")
