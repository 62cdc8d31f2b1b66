"""How a dataset and the check of a folder show in a notebook: counts as torch counts
them, every skipped file with its reason, copies, warnings, and sample images."""

from __future__ import annotations

import re
import shutil

import torch

import convnet
from conftest import embedded_images
from datasets_helpers import bad_folder


def _counts(html: str) -> dict[str, list[str]]:
    """The first table's rows: class -> its cells."""
    table = re.search(r"<table.*?</table>", html).group(0)
    return {cells[0]: cells[1:] for cells in (
        re.findall(r"<td[^>]*>([^<]*)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>",
                                                                           table)) if cells}


def test_a_built_in_dataset_shows_counts_per_split_and_samples_of_each_class():
    digits = convnet.datasets.load("digits")
    html = digits._repr_html_()
    train = torch.bincount(digits.train.labels, minlength=10)
    test = torch.bincount(digits.test.labels, minlength=10)
    rows = _counts(html)
    for index, name in enumerate(digits.classes):
        assert rows[name] == [f"{int(train[index]):,}", f"{int(test[index]):,}"]
    assert rows["all"] == ["8,000", "2,000"]
    assert len(embedded_images(html)) == 10 * 6  # six samples of each of the ten classes
    assert repr(digits) == "Dataset('digits': 10 classes, 28×28×1, 8,000 train, 2,000 test)"


def test_a_folder_shows_every_skipped_file_its_reason_and_its_copies(tmp_path):
    expected = bad_folder(tmp_path / "pets")
    cat = tmp_path / "pets" / "cat"
    shutil.copy(cat / "cat_0.png", cat / "cat_0 copy.png")  # an exact copy within a class
    dataset = convnet.datasets.load(str(tmp_path / "pets"), image_size=16)
    html = dataset._repr_html_()
    report = dataset.report
    assert html.count('class="convnet convnet-data-check"') == 1
    for path, reason in ((p.path, p.reason) for p in report.problems):
        assert f">{path}<" in html and f">{reason}<" in html
    assert len(report.problems) == len(expected)
    assert "cat_0 copy.png" in html and "within one class" in html
    assert repr(report).startswith(f"Report({report.root}: ") and \
        f"{len(expected):,} skipped, 1 groups of copies" in repr(report)


def test_many_classes_are_counted_row_by_row_up_to_thirty_and_all_in_the_total():
    from convnet.data.display import counts_table

    classes = [f"class {i}" for i in range(40)]
    rows = _counts(counts_table(classes, {"train": list(range(40))}))
    assert list(rows)[:30] == classes[:30] and "class 30" not in rows
    assert rows["… 10 more"] == [""] and rows["all"] == [f"{sum(range(40)):,}"]
