"""``dedupe``: a run drops the test images that copy training ones (exact or near), says
how many, and is scored without them; without it, nothing is dropped."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from PIL import Image

import convnet
from conftest import TINY_ARCH
from convnet.data.dedupe import without_copies


def _leaky_digits(root):
    """Two classes of real digits (8 train, 4 test each), two test images that copy
    training ones (one exact, one resized and saved as JPEG) and one training image twice."""
    split = convnet.datasets.load("digits").train
    for digit in (3, 7):
        rows = (split.labels == digit).nonzero().flatten()[:12].tolist()
        for number, row in enumerate(rows):
            folder = root / ("train" if number < 8 else "test") / str(digit)
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(split.images[row, 0].numpy()).save(folder / f"{row}.png")
    train = sorted((root / "train" / "3").iterdir())
    shutil.copy(train[0], root / "test" / "3" / "exact.png")
    Image.open(train[1]).resize((20, 20)).save(root / "test" / "3" / "near.jpg", quality=85)
    shutil.copy(train[2], root / "train" / "3" / "again.png")
    return root


def train_name(dataset) -> str:
    """The name of the training file that again.png copies."""
    (group,) = [g for g in dataset.report.duplicates if g.splits == ("train", "train")]
    return Path(next(p for p in group.paths if not p.endswith("again.png"))).name


def test_without_copies_drops_exactly_the_test_copies(tmp_path):
    dataset = convnet.datasets.load(str(_leaky_digits(tmp_path / "d")), near=True)
    assert len(dataset.test) == 10
    cleaned, dropped = without_copies(dataset)
    assert dropped == {"test": 2, "train": 1} and len(cleaned.test) == 8
    assert not any(name in path for path in cleaned.report.rows["test"]
                   for name in ("exact.png", "near.jpg"))
    # one of the two equal training images is left: a hold-out cannot part them
    assert len(dataset.train) == 17 and len(cleaned.train) == 16
    assert sum(path.endswith(("again.png", train_name(dataset))) for path in
               cleaned.report.rows["train"]) == 1
    _, nothing = without_copies(convnet.datasets.load("x-or-not-x"))
    assert nothing == {}


def test_a_run_with_dedupe_says_so_and_is_scored_without_them(tmp_path):
    data = _leaky_digits(tmp_path / "d")
    notices: list[str] = []

    class Notes(convnet.callbacks.Callback):
        def on_notice(self, line: str) -> None:
            notices.append(line)

    options = {"data": str(data), "arch": TINY_ARCH, "epochs": 1, "batch_size": 8}
    run = convnet.train(**options, dedupe=True, out=tmp_path / "clean",
                        callbacks=[Notes()]).run
    assert "dedupe: dropped 2 test image(s) that copy training images; kept one of each " \
        "group of copies in train (1 dropped)" in notices
    assert run.record.config.dedupe is True
    assert len(convnet.load(tmp_path / "clean").labelled()[0]) == 8
    plain = convnet.train(**options, out=tmp_path / "plain").run
    assert len(convnet.load(plain.path).labelled()[0]) == 10
    from convnet.explain.report import report

    page = report(plain.path).html.read_text()
    assert "Copies across splits or classes</h2><p>2 group(s)" in page
    assert "test/3/exact.png (test, 3)" in page and "test/3/near.jpg (test, 3)" in page
    assert "The run dropped" in report(tmp_path / "clean").html.read_text()


def test_a_report_of_the_older_duplicates_format_lists_nothing(tiny_run, tmp_path):
    from convnet.explain.sections import leaks_section

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "data_report.json").write_text(json.dumps({"root": "d", "duplicates": [
        {"path": "d/test/a.png", "first": "d/train/a.png", "kind": "across splits"}]}))
    assert leaks_section(convnet.load(run)) == ""
