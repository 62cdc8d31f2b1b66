"""``dedupe``: a dataset without the evaluation images that copy training ones, from the
copies its file scan found (`convnet.data.duplicates`)."""

from __future__ import annotations

from dataclasses import replace

import torch

from convnet.data.dataset import Dataset


def without_copies(dataset: Dataset) -> tuple[Dataset, dict[str, int]]:
    """``dataset`` without the validation and test images that are copies of training
    images (exact or near), and with one image of each group of copies inside the training
    split (the first), so that a validation hold-out cannot part them either; and how many
    each split lost. Data without a file scan (built-in sets, official files) comes back as
    it is."""
    report = dataset.report
    if report is None or not report.rows:
        return dataset, {}
    copies = {(split, path) for g in report.duplicates if "train" in g.splits
              for path, split in zip(g.paths, g.splits) if split != "train"}
    for g in report.duplicates:  # a group's later training members
        trained = [path for path, split in zip(g.paths, g.splits) if split == "train"]
        copies |= {("train", path) for path in trained[1:]}
    changed, dropped = {}, {}
    for name in ("train", "val", "test"):
        split, paths = getattr(dataset, name), report.rows.get(name, [])
        keep = [i for i, path in enumerate(paths) if (name, path) not in copies]
        if split is None or len(keep) == len(paths):
            continue
        dropped[name] = len(paths) - len(keep)
        changed[name] = split.subset(torch.tensor(keep)) if keep else None
        report.rows[name] = [paths[i] for i in keep]
    return replace(dataset, **changed), dropped
