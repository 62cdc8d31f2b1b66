"""`predict --sort-into`: images copied (or linked) into the predicted class's folder,
unsure ones into unknown/, the CSV beside them, and nothing in the folder replaced."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import convnet
from convnet.cli import main


def _images(folder: Path, count: int) -> list[Path]:
    folder.mkdir()
    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        path = folder / f"{index}.png"
        Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8)).save(path)
        paths.append(path)
    (folder / "broken.png").write_bytes(b"not an image")
    return paths


def test_sort_into_copies_by_prediction_and_never_replaces_a_file(tiny_run, tmp_path,
                                                                   capsys):
    paths = _images(tmp_path / "in", 6)
    run = convnet.load(tiny_run)
    expected = {p.name: run.predict_files([p])[0].top(1)[0] for p in paths}
    out = tmp_path / "out"
    out.mkdir()
    (out / "predictions.csv").write_text("mine\n")
    taken = out / run.classes[0] / "0.png"
    taken.parent.mkdir()
    taken.write_bytes(b"a file of the user's")
    cutoff = sorted(p for _, p in expected.values())[2]  # the two least sure: unknown/
    code = main(["predict", str(tiny_run), str(tmp_path / "in"), "--sort-into", str(out),
                 "--unknown-below", str(cutoff)])
    assert code == 1  # one file could not be read; the rest are sorted
    assert "sorted into" in capsys.readouterr().out
    assert taken.read_bytes() == b"a file of the user's"
    assert (out / "predictions.csv").read_text() == "mine\n"
    with (out / "predictions-2.csv").open() as handle:
        rows = {Path(row["file"]).name: row for row in csv.DictReader(handle)}
    assert rows["broken.png"]["error"] and not rows["broken.png"]["sorted_to"]
    for name, (cls, probability) in expected.items():
        folder = "unknown" if probability < cutoff else cls
        placed = Path(rows[name]["sorted_to"])
        assert placed.parent == out / folder, (name, placed)
        assert placed.read_bytes() == (tmp_path / "in" / name).read_bytes()
    assert len(list((out / "unknown").iterdir())) == 2


def test_sort_into_with_link_makes_symlinks_to_the_originals(tiny_run, tmp_path, capsys):
    paths = _images(tmp_path / "in", 3)
    assert main(["predict", str(tiny_run), *map(str, paths), "--sort-into",
                 str(tmp_path / "out"), "--link"]) == 0
    linked = [p for p in (tmp_path / "out").rglob("*.png")]
    assert len(linked) == 3 and all(p.is_symlink() for p in linked)
    assert {p.resolve() for p in linked} == {p.resolve() for p in paths}


def test_sort_into_refuses_a_threshold_outside_0_1_and_a_file_for_a_folder(tmp_path):
    from convnet.errors import ConvnetError
    from convnet.runs.sorting import sort_into

    with pytest.raises(ConvnetError, match=r"unknown_below must be a probability in \[0, 1\]"):
        sort_into([], ["a", "b"], tmp_path / "out", unknown_below=1.5)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConvnetError, match="is a file; give a folder"):
        sort_into([], ["a", "b"], tmp_path / "file")
