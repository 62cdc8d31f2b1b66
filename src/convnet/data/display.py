"""How a dataset and the check of a folder show in a notebook (their ``_repr_html_``):
images per class and split, a few images of each class, the files skipped and why, the
copies found, and the warnings `convnet check-data` prints.

Duck-typed, so that `Dataset` and `Report` can import this on first display without a
circle.
"""

from __future__ import annotations

from typing import Any

import torch

from convnet import display

SHOWN_CLASSES = 10  # classes with sample images (the rest are counted only)
PER_CLASS = 6  # sample images per class
MOST_LISTED = 20  # skipped files and copy groups listed
MOST_ROWS = 30  # classes counted row by row (the total counts them all)


def counts_table(classes: list[str], counts: dict[str, list[int]]) -> str:
    """Images per class (rows) and split (columns)."""
    splits = [name for name in ("train", "val", "test") if name in counts]
    rows = [(name, *(f"{counts[split][i]:,}" for split in splits))
            for i, name in enumerate(classes[:MOST_ROWS])]
    if len(classes) > MOST_ROWS:
        rows.append((f"… {len(classes) - MOST_ROWS:,} more", *([""] * len(splits))))
    rows.append(("all", *(f"{sum(counts[split]):,}" for split in splits)))
    return display.table(("class", *splits), rows, [False] + [True] * len(splits))


def report_html(report: Any) -> str:
    """The scan of a folder: counts, skipped files, copies and warnings."""
    parts = [counts_table(report.classes, report.counts),
             display.facts([("input", f"{report.preprocess.height}×{report.preprocess.width}"
                                      f"×{report.preprocess.channels}"),
                            ("skipped files", f"{len(report.problems):,}"),
                            ("groups of copies", f"{len(report.duplicates):,} "
                                                 f"({len(report.leaks):,} across splits "
                                                 "or classes)")])]
    if report.problems:
        parts.append(display.table(("skipped file", "why"), [
            (p.path, p.reason) for p in report.problems[:MOST_LISTED]]))
    if report.duplicates:
        parts.append(display.table(("copies", "kind", "files"), [
            ("across splits or classes" if g.flagged else "within one class", g.kind,
             ", ".join(g.paths)) for g in report.duplicates[:MOST_LISTED]]))
    parts += [f"<div style=\"color: #a60\">warning: {display.escape(line)}</div>"
              for line in report.warnings()]
    return display.block("data-check", f"check of {report.root}", *parts)


def _samples(dataset: Any) -> str:
    """A few training images of each of the first classes, enlarged where small."""
    rows = []
    labels = dataset.train.labels
    for index, name in enumerate(dataset.classes[:SHOWN_CLASSES]):
        members = torch.nonzero(labels == index).flatten()[:PER_CLASS]
        pictures = "".join(display.image(display.pixels_png(dataset.train.images[i], 48),
                                         f"{name} {int(i)}")
                           for i in members.tolist())
        rows.append(f"<div style=\"display: flex; align-items: center\"><span style=\""
                    f"width: 120px\">{display.escape(name)}</span>{pictures}</div>")
    return "".join(rows)


def dataset_html(dataset: Any) -> str:
    """A dataset: its classes and images per split, samples of each class, and the check
    of its files where it was read from a folder."""
    counts = {name: torch.bincount(split.labels, minlength=len(dataset.classes)).tolist()
              for name, split in (("train", dataset.train), ("val", dataset.val),
                                  ("test", dataset.test)) if split is not None}
    shape = "×".join(map(str, dataset.input_shape))
    parts = [display.facts([("images", shape), ("source", dataset.source)]),
             counts_table(dataset.classes, counts), _samples(dataset)]
    if dataset.report is not None:
        parts.append(report_html(dataset.report))
    return display.block("dataset", f"dataset {dataset.name}: {len(dataset.classes)} classes",
                         *parts)
